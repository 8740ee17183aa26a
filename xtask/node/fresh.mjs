// Proofs 2 and 5 of `cargo xtask node-test`, on one empty store:
//
// 2. Fresh account: the creds an empty store yields (created by the Rust core) are used by
//    Baileys: its pre-key generation writes 30 pre-keys through our keys and builds the upload
//    node, whose signed pre-key signature verifies; saveCreds, close, reopen gives deep-equal
//    creds and the same pre-keys.
// 5. Bad input from JS is rejected with an INVALID error naming what is wrong, and nothing of it
//    (nor of the valid entries next to it) is written.
//
// Usage: node fresh.mjs <config.json>   (written by xtask: see xtask/src/node_test.rs)

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'

import { loadBaileys, openRepository, reporter } from '../interop/baileys.mjs'

const config = JSON.parse(readFileSync(process.argv[2], 'utf-8'))
const B = await loadBaileys(config.baileys_dir, config.version)
const pkg = createRequire(join(config.package, 'package.json'))(config.package)
const r = reporter(config.label)
const major = B.v6 ? 6 : 7
console.log(`${config.label}: fresh ${config.store.kind} store, Baileys ${config.version}`)

const open = () => {
	const s = config.store
	if (s.kind === 'native') return pkg.useNativeAuthState(s.dir, { baileysVersion: major })
	if (s.kind === 'folder') return pkg.useBaileysFolderAuthState(s.dir, { baileysVersion: major })
	return pkg.usePostgresAuthState({ connectionString: s.connectionString, instanceId: s.instanceId, baileysVersion: major })
}

let auth = await open()
const { creds } = auth.state
const isKey = (v) => Buffer.isBuffer(v) && v.length === 32

// 2. Fresh creds that Baileys uses.
await r.check('fresh creds have Baileys\' shape', () => {
	for (const pair of ['noiseKey', 'pairingEphemeralKeyPair', 'signedIdentityKey']) {
		if (!isKey(creds[pair]?.public) || !isKey(creds[pair]?.private)) throw new Error(`${pair} is not a key pair of Buffers`)
	}
	if (!isKey(creds.signedPreKey.keyPair.public) || creds.signedPreKey.signature.length !== 64) {
		throw new Error('signedPreKey is not a signed key pair')
	}
	if (creds.nextPreKeyId !== 1 || creds.firstUnuploadedPreKeyId !== 1 || creds.registered !== false) {
		throw new Error('counters of a new account expected')
	}
	const fields = Object.keys(B.initAuthCreds()).filter((k) => B.initAuthCreds()[k] !== undefined)
	const missing = fields.filter((k) => creds[k] === undefined)
	if (missing.length) throw new Error(`missing fields of initAuthCreds: ${missing}`)
	return `registrationId ${creds.registrationId}`
})
await r.check('the signed pre-key signature verifies (Baileys\' Curve.verify)', () => {
	const message = B.generateSignalPubKey(creds.signedPreKey.keyPair.public)
	if (!B.Curve.verify(creds.signedIdentityKey.public, message, creds.signedPreKey.signature)) throw new Error('bad signature')
})
let node
let update
await r.check('Baileys generates 30 pre-keys into our store and builds the upload node', async () => {
	const { keys } = openRepository(B, auth.state)
	;({ update, node } = await B.getNextPreKeysNode({ creds, keys }, 30))
	const child = (tag) => node.content.find((c) => c.tag === tag)
	if (Buffer.from(child('registration').content).readUInt32BE(0) !== creds.registrationId) throw new Error('registration id')
	if (!Buffer.from(child('identity').content).equals(creds.signedIdentityKey.public)) throw new Error('identity')
	if (child('list').content.length !== 30) throw new Error(`${child('list').content.length} pre-keys in the node`)
	const skey = child('skey').content
	const value = skey.find((c) => c.tag === 'value').content
	const signature = skey.find((c) => c.tag === 'signature').content
	if (!B.Curve.verify(creds.signedIdentityKey.public, B.generateSignalPubKey(value), signature)) {
		throw new Error('the node\'s signed pre-key does not verify')
	}
	return `update ${JSON.stringify(update)}`
})
const preKeyIds = Array.from({ length: 30 }, (_, i) => String(i + 1))
const preKeys = await auth.state.keys.get('pre-key', preKeyIds)
await r.check('saveCreds, close, reopen: deep-equal creds and the same pre-keys', async () => {
	Object.assign(creds, update)
	await auth.saveCreds()
	await auth.close()
	auth = await open()
	if (!isDeepStrictEqual(auth.state.creds, creds)) throw new Error('creds differ after reopen')
	const again = await auth.state.keys.get('pre-key', preKeyIds)
	if (!isDeepStrictEqual(again, preKeys) || Object.values(again).some((v) => !v)) throw new Error('pre-keys differ')
	const listed = node.content.find((c) => c.tag === 'list').content
	for (const [i, key] of listed.entries()) {
		if (!Buffer.from(key.content[1].content).equals(again[String(i + 1)].public)) throw new Error(`pre-key ${i + 1}`)
	}
	return `nextPreKeyId ${auth.state.creds.nextPreKeyId}`
})

// 5. Bad input.
const { keys } = auth.state
const good = { 'lid-mapping': { 9990001: '9990002' } }
const before = JSON.stringify(auth.state.creds, pkg.BufferJSON.replacer)
const circular = {}
circular.self = circular
const badCalls = [
	['get: type not a string', () => keys.get(42, ['1'])],
	['get: ids not an array', () => keys.get('session', '1.0')],
	['get: undefined id', () => keys.get('session', [undefined])],
	['get: null id', () => keys.get('session', [null])],
	['get: Buffer id', () => keys.get('session', [Buffer.from('1.0')])],
	['get: object id', () => keys.get('session', [{}])],
	['get: bad type name', () => keys.get('Session Keys!', ['1'])],
	['get: "undefined" id', () => keys.get('session', [`${undefined}`])],
	['set: data not an object', () => keys.set('session')],
	['set: data null', () => keys.set(null)],
	['set: entries not an object', () => keys.set({ ...good, session: [1, 2] })],
	['set: session not a record', () => keys.set({ ...good, session: { '1.0': 42 } })],
	['set: Buffer where a string belongs', () => keys.set({ ...good, 'lid-mapping': { 1: Buffer.from('x') } })],
	['set: string where a Buffer belongs', () => keys.set({ ...good, 'identity-key': { '1.0': 'not a key' } })],
	['set: pre-key id not a number', () => keys.set({ ...good, 'pre-key': { abc: preKeys['1'] } })],
	['set: pre-key half missing', () => keys.set({ ...good, 'pre-key': { 31: { public: preKeys['1'].public } } })],
	['set: undefined id', () => keys.set({ ...good, session: { [undefined]: null } })],
	['set: empty id', () => keys.set({ ...good, session: { '': null } })],
	['set: control character in id', () => keys.set({ ...good, session: { 'a\u0000b': null } })],
	['set: 2,000-character id', () => keys.set({ ...good, 'other-tool': { ['x'.repeat(2000)]: 1 } })],
	['set: huge value (9 MiB)', () => keys.set({ ...good, 'other-tool': { big: 'x'.repeat(9 << 20) } })],
	['set: bad type name', () => keys.set({ ...good, 'Other Tool': { a: 1 } })],
	['set: circular value', () => keys.set({ ...good, 'other-tool': { a: circular } })],
	['set: BigInt value', () => keys.set({ ...good, 'other-tool': { a: 10n } })],
]
for (const [line, fn] of badCalls) {
	await r.check(`bad input rejected: ${line}`, async () => {
		try {
			await fn()
		} catch (e) {
			if (!(e instanceof Error) || e.code !== 'INVALID') throw new Error(`wrong error: ${e?.code} ${e}`)
			return e.message.slice(0, 110)
		}
		throw new Error('accepted')
	})
}
await r.check('bad creds rejected by saveCreds, stored creds unchanged', async () => {
	const saved = creds.noiseKey
	auth.state.creds.noiseKey = 'not a key pair'
	try {
		await auth.saveCreds()
		throw new Error('accepted')
	} catch (e) {
		if (e.code !== 'INVALID') throw e
	} finally {
		auth.state.creds.noiseKey = saved
	}
})
await r.check('nothing of the rejected calls was written', async () => {
	await auth.close()
	auth = await open()
	const got = await auth.state.keys.get('lid-mapping', ['9990001'])
	if (got['9990001'] !== null) throw new Error('a valid entry next to a bad one was written')
	const other = await auth.state.keys.get('other-tool', ['a', 'big'])
	if (Object.values(other).some((v) => v !== null)) throw new Error('an other-tool entry was written')
	if (JSON.stringify(auth.state.creds, pkg.BufferJSON.replacer) !== before) throw new Error('creds changed')
})
await r.check('a valid set still works after the rejections; closed store says CLOSED', async () => {
	await auth.state.keys.set({ ...good, 'other-tool': { a: { nested: [1, Buffer.from('ok')] } } })
	const got = await auth.state.keys.get('other-tool', ['a'])
	if (!isDeepStrictEqual(got.a, { nested: [1, Buffer.from('ok')] })) throw new Error('unknown kind not kept intact')
	await auth.close()
	try {
		await auth.state.keys.get('session', ['1.0'])
		throw new Error('a closed store answered')
	} catch (e) {
		if (e.code !== 'CLOSED') throw e
	}
})
r.finish()
