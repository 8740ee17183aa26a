// `cargo xtask bench node`: Baileys 7 over useMultiFileAuthState and over wa-auth-node's stores,
// side by side in one run. Prints a markdown table for docs/benchmarks.md.
//
// Usage: node bench.mjs <config.json>   config: { baileys_dir, version, package,
//        connection_string, work, sessions, decrypts, transactions, runs }
//
// (a) open an account of `sessions` sessions and read every session once, one keys.get per
//     session as libsignal loads them (median of `runs`);
// (b) `decrypts` 1:1 messages decrypted in order through Baileys' repository
//     (makeCacheableSignalKeyStore + addTransactionCapability + makeLibSignalRepository): msgs/s;
// (c) one Baileys transaction's commit, a session update + a pre-key delete in one keys.set:
//     p50/p99 latency until set resolves (`transactions` samples after 100 warm-up ones).
// Sessions are real: created by libsignal through Baileys between two generated accounts.

import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { loadavg } from 'node:os'
import { join } from 'node:path'

import { loadBaileys, openRepository } from '../interop/baileys.mjs'

const config = JSON.parse(readFileSync(process.argv[2], 'utf-8'))
const B = await loadBaileys(config.baileys_dir, config.version)
const pkg = createRequire(join(config.package, 'package.json'))(config.package)
let instances = 0

const STORES = {
	'Baileys useMultiFileAuthState': async (dir) => {
		const { state, saveCreds } = await B.useMultiFileAuthState(dir)
		return { state, saveCreds, close: async () => {} }
	},
	'wa-auth-node native': (dir) => pkg.useNativeAuthState(dir),
	'wa-auth-node Baileys folder': (dir) => pkg.useBaileysFolderAuthState(dir),
	'wa-auth-node PostgreSQL': (dir) =>
		pkg.usePostgresAuthState({ connectionString: config.connection_string, instanceId: dir.replaceAll('/', '_') }),
	'wa-auth-node PostgreSQL write-behind': (dir) =>
		pkg.usePostgresAuthState({
			connectionString: config.connection_string,
			instanceId: dir.replaceAll('/', '_'),
			writeBehind: true,
		}),
}

/** A place for a new store. */
const fresh = (name) => {
	const dir = join(config.work, `${name.replace(/\W+/g, '-')}-${++instances}`)
	mkdirSync(dir, { recursive: true })
	return dir
}

/** Baileys' state in memory: the peer side of every conversation. */
function memoryState() {
	const data = {}
	return {
		creds: B.initAuthCreds(),
		keys: {
			get: async (type, ids) => Object.fromEntries(ids.map((id) => [id, data[type]?.[id] ?? null])),
			set: async (changes) => {
				for (const [type, values] of Object.entries(changes)) {
					data[type] ??= {}
					for (const [id, value] of Object.entries(values)) {
						if (value) data[type][id] = value
						else delete data[type][id]
					}
				}
			},
		},
	}
}

const ACCOUNT = '15550000001@s.whatsapp.net'
const PEER = '15550000002@s.whatsapp.net'

/** A session between `account` and a new in-memory peer; returns both repositories. */
async function converse(account) {
	const accountStack = openRepository(B, account.state)
	const peerState = memoryState()
	const peer = openRepository(B, peerState)
	const { update } = await B.getNextPreKeys({ creds: account.state.creds, keys: accountStack.keys }, 2)
	const preKeyId = account.state.creds.nextPreKeyId
	Object.assign(account.state.creds, update)
	const { [preKeyId]: preKey } = await accountStack.keys.get('pre-key', [String(preKeyId)])
	const { creds } = account.state
	await peer.repo.injectE2ESession({
		jid: ACCOUNT,
		session: {
			registrationId: creds.registrationId,
			identityKey: B.generateSignalPubKey(creds.signedIdentityKey.public),
			signedPreKey: {
				keyId: creds.signedPreKey.keyId,
				publicKey: B.generateSignalPubKey(creds.signedPreKey.keyPair.public),
				signature: creds.signedPreKey.signature,
			},
			preKey: { keyId: preKeyId, publicKey: B.generateSignalPubKey(preKey.public) },
		},
	})
	const first = await peer.repo.encryptMessage({ jid: ACCOUNT, data: Buffer.from('hello') })
	await accountStack.repo.decryptMessage({ jid: PEER, ...first })
	const reply = await accountStack.repo.encryptMessage({ jid: PEER, data: Buffer.from('hi') })
	await peer.repo.decryptMessage({ jid: ACCOUNT, ...reply })
	return { account: accountStack, peer }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]

/** A real session record (Baileys' serialized form), after a few messages both ways. */
async function sampleSession() {
	const account = { state: memoryState() }
	const { account: a, peer } = await converse(account)
	for (let i = 0; i < 3; i++) {
		const m = await peer.repo.encryptMessage({ jid: ACCOUNT, data: Buffer.from(`m${i}`) })
		await a.repo.decryptMessage({ jid: PEER, ...m })
		const r = await a.repo.encryptMessage({ jid: PEER, data: Buffer.from(`r${i}`) })
		await peer.repo.decryptMessage({ jid: ACCOUNT, ...r })
	}
	const id = a.repo.jidToSignalProtocolAddress(PEER)
	return (await account.state.keys.get('session', [id]))[id]
}

async function openAndRead(open, session) {
	const dir = fresh('a')
	const ids = Array.from({ length: config.sessions }, (_, i) => `4915${String(i).padStart(9, '0')}.0`)
	let auth = await open(dir)
	await auth.state.keys.set({ session: Object.fromEntries(ids.map((id) => [id, session])) })
	await auth.saveCreds()
	await auth.close()
	const times = []
	for (let run = 0; run < config.runs; run++) {
		const started = performance.now()
		auth = await open(dir)
		let found = 0
		for (const id of ids) {
			const { [id]: value } = await auth.state.keys.get('session', [id])
			if (value) found++
		}
		times.push(performance.now() - started)
		await auth.close()
		if (found !== ids.length) throw new Error(`read ${found} of ${ids.length} sessions`)
	}
	return median(times)
}

async function decrypts(open) {
	const auth = await open(fresh('b'))
	const { account, peer } = await converse(auth)
	const messages = []
	for (let i = 0; i < config.decrypts; i++) {
		messages.push(await peer.repo.encryptMessage({ jid: ACCOUNT, data: Buffer.from(`message ${i}`) }))
	}
	const started = performance.now()
	for (const m of messages) await account.repo.decryptMessage({ jid: PEER, ...m })
	const seconds = (performance.now() - started) / 1000
	await auth.close()
	return config.decrypts / seconds
}

async function transactions(open, session) {
	const auth = await open(fresh('c'))
	const total = config.transactions + 100
	const preKeys = {}
	for (let i = 1; i <= total; i++) preKeys[i] = B.Curve.generateKeyPair()
	await auth.state.keys.set({ 'pre-key': preKeys })
	const latencies = []
	for (let i = 1; i <= total; i++) {
		const started = performance.now()
		await auth.state.keys.set({ session: { '4915100000001.0': session }, 'pre-key': { [i]: null } })
		if (i > 100) latencies.push(performance.now() - started)
	}
	await auth.close()
	return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}

if (!config.connection_string) {
	for (const name of Object.keys(STORES)) if (name.includes('PostgreSQL')) delete STORES[name]
}
const loadBefore = loadavg()
const session = await sampleSession()
const sessionBytes = JSON.stringify(session).length
const rows = []
for (const [name, open] of Object.entries(STORES)) {
	const a = await openAndRead(open, session)
	const b = await decrypts(open)
	const c = await transactions(open, session)
	rows.push({ name, a, b, c })
	console.error(`${name}: (a) ${a.toFixed(0)} ms, (b) ${b.toFixed(0)} msg/s, (c) p50 ${c.p50.toFixed(2)} ms p99 ${c.p99.toFixed(2)} ms`)
}
const loadAfter = loadavg()
const base = rows[0]
console.log(`Baileys ${config.version}, Node ${process.version}; sessions of ${sessionBytes} B of JSON; ` +
	`load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}\n`)
console.log(`| store | (a) open + read ${config.sessions} sessions | (b) ${config.decrypts} decrypts | (c) transaction commit p50 / p99 | durable when set resolves |`)
console.log('|---|---|---|---|---|')
for (const row of rows) {
	const ratio = row === base ? '' : ` (${(base.a / row.a).toFixed(1)}× faster)`
	const durable = row === base ? 'no (no fsync)' : row.name.includes('write-behind') ? 'no (queued, flushed within ms)' : 'yes'
	console.log(`| ${row.name} | ${row.a.toFixed(0)} ms${ratio} | ${row.b.toFixed(0)} msg/s | ${row.c.p50.toFixed(2)} / ${row.c.p99.toFixed(2)} ms | ${durable} |`)
}
process.exit(0)
