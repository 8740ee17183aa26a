// Real Baileys reads what wa-store-compat wrote (run by `cargo xtask interop`).
//
// Usage: node check.mjs <config.json>
//
// The config (written by xtask) names the installed Baileys, the account folder the Rust store
// wrote after decrypting the fixture vectors and encrypting replies, the peers' folders
// (copies of fixtures/baileys/<version>/paired-with-sessions/peers/*/auth) and the replies.
// Checks, each reported on its own line:
//   1. Baileys' useMultiFileAuthState loads the account: creds usable, every key file readable
//      through state.keys.get and decodable by Baileys/libsignal (sessions, sender keys, ...);
//   2. every peer, loaded with Baileys from its own folder, decrypts our 1:1 replies and our
//      group messages (libsignal-node from Baileys' dependency tree);
//   3. Baileys, running the account from the folder we wrote, continues our sessions and sender
//      keys: it encrypts to each peer (1:1 and group) and the peer decrypts that too.
// Exits 1 with a list of failures if anything fails.

import { readFileSync, readdirSync } from 'node:fs'

import { b64, classify, loadBaileys, openRepository } from './baileys.mjs'

const config = JSON.parse(readFileSync(process.argv[2], 'utf-8'))
const label = `Baileys ${config.version}`
const failures = []
const ok = (line) => console.log(`  ok   ${line}`)
const fail = (line) => {
	console.log(`  FAIL ${line}`)
	failures.push(line)
}

const B = await loadBaileys(config.baileys_dir, config.version)
const { libsignal, SenderKeyRecord, useMultiFileAuthState } = B

const open = async (folder) => {
	const { state } = await useMultiFileAuthState(folder)
	return { state, repo: openRepository(B, state).repo }
}

const isBytes = (v, len) => Buffer.isBuffer(v) && (len === undefined || v.length === len)

// What Baileys does with each kind, and what must hold for it to work.
const checkValue = (kind, value) => {
	switch (kind) {
		case 'session': {
			const record = libsignal.SessionRecord.deserialize(value)
			if (!record.haveOpenSession()) throw new Error('no open session')
			return
		}
		case 'sender-key': {
			const record = config.version.startsWith('6.')
				? new SenderKeyRecord(value)
				: SenderKeyRecord.deserialize(value)
			if (record.isEmpty() || !record.getSenderKeyState()) throw new Error('no sender key state')
			return
		}
		case 'pre-key':
			if (!isBytes(value.private, 32) || !isBytes(value.public, 32)) throw new Error('bad key pair')
			return
		case 'app-state-sync-key':
			if (!value.keyData || value.keyData.length !== 32) throw new Error('no keyData')
			return
		case 'app-state-sync-version':
			if (!isBytes(value.hash, 128) || typeof value.version !== 'number') throw new Error('bad state')
			for (const entry of Object.values(value.indexValueMap ?? {})) {
				if (!isBytes(entry.valueMac)) throw new Error('bad valueMac')
			}
			return
		case 'identity-key':
			if (!isBytes(value, 33)) throw new Error('not a 33-byte Buffer')
			return
		case 'tctoken':
			if (!isBytes(value.token)) throw new Error('token is not a Buffer')
			return
		case 'lid-mapping':
			if (typeof value !== 'string') throw new Error('not a string')
			return
		case 'device-list':
			if (!Array.isArray(value)) throw new Error('not an array')
			return
		case 'sender-key-memory':
			if (typeof value !== 'object') throw new Error('not an object')
			return
		default:
			throw new Error(`unexpected kind ${kind}`)
	}
}

console.log(`${label}: checking the folder wa-store-compat wrote (${config.auth})`)

// 1. The account folder, through Baileys.
const account = await open(config.auth)
const creds = account.state.creds
if (creds.registrationId !== config.expected.registration_id) {
	fail(`creds.json: registrationId ${creds.registrationId}, expected ${config.expected.registration_id} (fresh creds?)`)
} else if (!isBytes(creds.signedIdentityKey.private, 32) || !isBytes(creds.noiseKey.public, 32)) {
	fail('creds.json: key pairs are not Buffers')
} else if (creds.me?.id !== config.expected.me) {
	fail(`creds.json: me.id ${creds.me?.id}, expected ${config.expected.me}`)
} else {
	ok(`creds.json: registrationId ${creds.registrationId}, ${creds.me.id}, key pairs usable`)
}
const counts = {}
for (const name of readdirSync(config.auth).sort()) {
	if (name === 'creds.json' || name.startsWith('.')) continue
	const key = name.endsWith('.json') ? classify(name) : null
	if (!key) {
		fail(`${name}: not a file of Baileys' layout`)
		continue
	}
	try {
		const { [key.id]: value } = await account.state.keys.get(key.kind, [key.id])
		if (value === null || value === undefined) throw new Error('Baileys read null')
		checkValue(key.kind, value)
		counts[key.kind] = (counts[key.kind] ?? 0) + 1
	} catch (e) {
		fail(`${name} (${key.kind} ${key.id}): ${e.message}`)
	}
}
const total = Object.values(counts).reduce((a, b) => a + b, 0)
ok(`${total} key files read by Baileys: ${JSON.stringify(counts)}`)

// 2. The peers decrypt our replies.
const peers = new Map()
const peer = async (name, folder) => {
	if (!peers.has(name)) peers.set(name, await open(folder))
	return peers.get(name)
}
for (const reply of config.replies) {
	const line = `peer ${reply.peer} decrypts our ${reply.type} (${reply.account_jid} -> ${reply.to_jid})`
	try {
		const { repo } = await peer(reply.peer, reply.peer_auth)
		const plaintext = await repo.decryptMessage({
			jid: reply.account_jid,
			type: reply.type,
			ciphertext: b64(reply.ciphertext_b64),
		})
		Buffer.from(plaintext).equals(b64(reply.plaintext_b64)) ? ok(line) : fail(`${line}: plaintext differs`)
	} catch (e) {
		fail(`${line}: ${e.message}`)
	}
}
for (const message of config.group_replies) {
	for (const p of message.peers) {
		const line = `peer ${p.peer} decrypts our group message in ${message.group}`
		try {
			const { repo } = await peer(p.peer, p.peer_auth)
			const plaintext = await repo.decryptGroupMessage({
				group: message.group,
				authorJid: message.author_jid,
				msg: b64(message.ciphertext_b64),
			})
			Buffer.from(plaintext).equals(b64(message.plaintext_b64)) ? ok(line) : fail(`${line}: plaintext differs`)
		} catch (e) {
			fail(`${line}: ${e.message}`)
		}
	}
}

// 3. Baileys continues our sessions and sender keys.
for (const reply of config.replies) {
	const line = `Baileys, as the account, continues our session with ${reply.peer} (${reply.to_jid})`
	try {
		const data = Buffer.from(`from Baileys after wa-store-compat, to ${reply.peer}`)
		const { type, ciphertext } = await account.repo.encryptMessage({ jid: reply.to_jid, data })
		const { repo } = await peer(reply.peer, reply.peer_auth)
		const plaintext = await repo.decryptMessage({ jid: reply.account_jid, type, ciphertext })
		Buffer.from(plaintext).equals(data) ? ok(`${line}: ${type} decrypted by the peer`) : fail(`${line}: plaintext differs`)
	} catch (e) {
		fail(`${line}: ${e.message}`)
	}
}
for (const message of config.group_replies) {
	const data = Buffer.from(`group message from Baileys after wa-store-compat in ${message.group}`)
	let ciphertext
	try {
		;({ ciphertext } = await account.repo.encryptGroupMessage({
			group: message.group,
			meId: message.author_jid,
			data,
		}))
	} catch (e) {
		fail(`Baileys, as the account, continues our sender key in ${message.group}: ${e.message}`)
		continue
	}
	for (const p of message.peers) {
		const line = `Baileys continues our sender key in ${message.group}: peer ${p.peer} decrypts`
		try {
			const { repo } = await peer(p.peer, p.peer_auth)
			const plaintext = await repo.decryptGroupMessage({
				group: message.group,
				authorJid: message.author_jid,
				msg: ciphertext,
			})
			Buffer.from(plaintext).equals(data) ? ok(line) : fail(`${line}: plaintext differs`)
		} catch (e) {
			fail(`${line}: ${e.message}`)
		}
	}
}

if (failures.length) {
	console.log(`${label}: ${failures.length} check(s) FAILED:`)
	for (const f of failures) console.log(`  - ${f}`)
	process.exit(1)
}
console.log(`${label}: every check passed`)
// Baileys leaves timers (caches) running; the checks are done.
process.exit(0)
