// The child of the crash test (see crash.mjs): Baileys transactions in a loop over one of our
// stores, until it is SIGKILLed.
//
// Usage: node crash-child.mjs <config.json> <native|folder> <dir>
// Loads everything, prints "ready", then waits for a line on stdin:
//   "setup"        creates the starting state (transaction 0) and prints "setup <offset>";
//   "go <a> <o>"   opens the store, checks it against <a> (the last acknowledged transaction) and
//                  <o> (the setup's offset), prints "state <c>" (or "bad <reason>"), then runs
//                  transactions c+1, c+2, ... printing "ack <n>" once each one's set resolved;
//   "check <a> <o>" like go, but exits after the check.
// Transaction n, in ONE Baileys transaction (addTransactionCapability over
// makeCacheableSignalKeyStore over our keys): encrypt one message to the peer (session update),
// put pre-key BASE+n and read and delete pre-key BASE+n-1, put {n} under the unknown kind `crash-test`,
// and set creds.accountSyncCounter = n (creds changed in a transaction ride along in its set).
// The state after a crash must be exactly transaction c for some c >= <a>:
// the sending chain counter is offset + c, pre-key BASE+c exists and BASE+c-1 does not,
// crash-test.last = c and creds.accountSyncCounter = c.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'

const [configPath, kind, dir] = process.argv.slice(2)
const config = JSON.parse(readFileSync(configPath, 'utf-8'))
const load = async (relative) => import(pathToFileURL(join(config.baileys_dir, relative)).href)
const { makeCacheableSignalKeyStore, addTransactionCapability } = await load('lib/Utils/auth-utils.js')
const { makeLibSignalRepository } = await load('lib/Signal/libsignal.js')
const { Curve, signedKeyPair } = await load('lib/Utils/crypto.js')
const pkg = createRequire(join(config.package, 'package.json'))(config.package)

const PEER = '4915100000001@s.whatsapp.net'
const PEER_ADDRESS = '4915100000001.0'
const BASE = 100000
const silent = { level: 'silent', trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent }
const say = (line) => process.stdout.write(`${line}\n`)

const open = () =>
	kind === 'native'
		? pkg.useNativeAuthState(dir, { baileysVersion: 7 })
		: pkg.useBaileysFolderAuthState(dir, { baileysVersion: 7 })

function stack(state) {
	const keys = addTransactionCapability(makeCacheableSignalKeyStore(state.keys, silent), silent, {
		maxCommitRetries: 1,
		delayBetweenTriesMs: 1,
	})
	return { keys, repo: makeLibSignalRepository({ creds: state.creds, keys }, silent) }
}

/** The counter of the open session's sending chain. */
function sendingCounter(session) {
	for (const s of Object.values(session._sessions)) {
		if (s.indexInfo.closed !== -1) continue
		for (const chain of Object.values(s._chains)) if (chain.chainType === 1) return chain.chainKey.counter
	}
	throw new Error('no open session with a sending chain')
}

async function observe(state) {
	const { last } = await state.keys.get('crash-test', ['last'])
	if (!last) throw new Error('no crash-test/last key')
	const c = last.n
	const { [PEER_ADDRESS]: session } = await state.keys.get('session', [PEER_ADDRESS])
	const pre = await state.keys.get('pre-key', [String(BASE + c), String(BASE + c - 1)])
	return { c, counter: sendingCounter(session), pre, creds: state.creds.accountSyncCounter }
}

async function transaction({ state, keys, repo }, n) {
	await keys.transaction(async () => {
		await repo.encryptMessage({ jid: PEER, data: Buffer.from(`message ${n}`) })
		// Read before delete, as libsignal does (Baileys only deletes a pre-key it has read).
		await keys.get('pre-key', [String(BASE + n - 1)])
		await keys.set({ 'pre-key': { [BASE + n]: Curve.generateKeyPair(), [BASE + n - 1]: null } })
		await keys.set({ 'crash-test': { last: { n } } })
		state.creds.accountSyncCounter = n
	}, PEER)
}

async function setup() {
	const auth = await open()
	const s = { state: auth.state, ...stack(auth.state) }
	const identity = Curve.generateKeyPair()
	const signed = signedKeyPair(identity, 1)
	const oneTime = Curve.generateKeyPair()
	await s.keys.transaction(async () => {
		await s.repo.injectE2ESession({
			jid: PEER,
			session: {
				registrationId: 4321,
				identityKey: Buffer.concat([Buffer.from([5]), identity.public]),
				signedPreKey: { keyId: 1, publicKey: Buffer.concat([Buffer.from([5]), signed.keyPair.public]), signature: signed.signature },
				preKey: { keyId: 7, publicKey: Buffer.concat([Buffer.from([5]), oneTime.public]) },
			},
		})
		await s.keys.set({ 'pre-key': { [BASE]: Curve.generateKeyPair() }, 'crash-test': { last: { n: 0 } } })
		auth.state.creds.accountSyncCounter = 0
	}, PEER)
	await auth.saveCreds()
	const o = await observe(auth.state)
	await auth.close()
	say(`setup ${o.counter - o.c}`)
}

async function go(acked, offset, loop) {
	const auth = await open()
	const o = await observe(auth.state)
	const problems = []
	if (o.c < acked) problems.push(`transaction ${acked} was acknowledged but the store holds ${o.c}`)
	if (o.counter !== offset + o.c) problems.push(`sending counter ${o.counter}, expected ${offset + o.c}`)
	if (!o.pre[String(BASE + o.c)]) problems.push(`pre-key ${BASE + o.c} missing`)
	if (o.c > 0 && o.pre[String(BASE + o.c - 1)]) problems.push(`pre-key ${BASE + o.c - 1} not deleted`)
	if (o.creds !== o.c) problems.push(`creds.accountSyncCounter ${o.creds}, expected ${o.c}`)
	if (problems.length) {
		say(`bad ${problems.join('; ')}`)
		process.exit(3)
	}
	say(`state ${o.c}`)
	if (!loop) {
		await auth.close()
		process.exit(0)
	}
	const s = { state: auth.state, ...stack(auth.state) }
	for (let n = o.c + 1; ; n++) {
		await transaction(s, n)
		say(`ack ${n}`)
	}
}

say('ready')
const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
	const [command, a, o] = line.trim().split(' ')
	try {
		if (command === 'setup') await setup()
		else await go(Number(a), Number(o), command === 'go')
	} catch (e) {
		say(`bad ${e?.stack?.split('\n').slice(0, 3).join(' | ') ?? e}`)
		process.exit(4)
	}
	break
}
process.exit(0)
