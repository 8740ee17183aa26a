// Proof 1 of `cargo xtask node-test`: a fixture account, moved into one of our stores, runs
// under Baileys' own key-store stack over wa-auth-node.
//
// Usage: node fixtures.mjs <config.json>   (written by xtask: see xtask/src/node_test.rs)
//
// 1. The creds and every key file of the fixture folder read through our store equal what
//    Baileys' own useMultiFileAuthState reads from the original folder.
// 2. Baileys (makeCacheableSignalKeyStore + addTransactionCapability + makeLibSignalRepository
//    over our state.keys) decrypts every future message of expected/vectors.json in order.
// 3. It replies to every saved peer (1:1, and in every group where the peer holds the account's
//    sender key); each peer, loaded by Baileys from its own folder, decrypts the replies.
// 4. After close and reopen, Baileys continues the same sessions: one more message per peer.

import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'

import { b64, classify, loadBaileys, openRepository, reporter } from '../interop/baileys.mjs'

const config = JSON.parse(readFileSync(process.argv[2], 'utf-8'))
const B = await loadBaileys(config.baileys_dir, config.version)
const pkg = createRequire(join(config.package, 'package.json'))(config.package)
const r = reporter(`${config.label}`)
console.log(`${config.label}: ${config.store.kind} store, Baileys ${config.version}`)

const openOurs = () => {
	const s = config.store
	if (s.kind === 'native') return pkg.useNativeAuthState(s.dir)
	if (s.kind === 'folder') return pkg.useBaileysFolderAuthState(s.dir)
	return pkg.usePostgresAuthState({ connectionString: s.connectionString, instanceId: s.instanceId })
}

// A value in a form both stores agree on: bytes as base64 (Buffers, Buffer objects, and the
// base64 text of the byte fields of a sender key), a Baileys 7 sender key's embedded JSON parsed.
const BYTE_FIELDS = new Set(['seed', 'public', 'private'])
function canon(kind, value, field) {
	if (value instanceof Uint8Array) {
		const bytes = Buffer.from(value)
		if (kind === 'sender-key' && field === undefined) return canon(kind, JSON.parse(bytes.toString('utf-8')))
		return `bytes:${bytes.toString('base64')}`
	}
	if (value && typeof value === 'object' && value.type === 'Buffer' && value.data !== undefined) {
		return canon(kind, Buffer.from(typeof value.data === 'string' ? b64(value.data) : value.data), field ?? '')
	}
	if (kind === 'sender-key' && typeof value === 'string' && BYTE_FIELDS.has(field)) return `bytes:${value}`
	if (Array.isArray(value)) return value.map((v) => canon(kind, v, ''))
	if (value && typeof value === 'object') {
		const out = {}
		for (const k of Object.keys(value).sort()) if (value[k] !== undefined) out[k] = canon(kind, value[k], k)
		return out
	}
	return value
}

function sameValue(kind, ours, theirs) {
	if (kind === 'app-state-sync-key') {
		const P = B.proto.Message.AppStateSyncKeyData
		return isDeepStrictEqual(P.fromObject(ours).toJSON(), P.fromObject(theirs).toJSON())
	}
	return isDeepStrictEqual(canon(kind, ours), canon(kind, theirs))
}

const original = (await B.useMultiFileAuthState(config.source_auth)).state
let ours = await openOurs()

// 1. Same creds, same keys.
await r.check('creds equal what Baileys reads from the folder', () => {
	if (!isDeepStrictEqual(canon('creds', ours.state.creds), canon('creds', original.creds))) {
		throw new Error('creds differ')
	}
	return `registrationId ${ours.state.creds.registrationId}, me ${ours.state.creds.me?.id ?? '(unpaired)'}`
})
const files = readdirSync(config.source_auth).map(classify).filter(Boolean)
await r.check(`every key file of the folder reads the same through our store`, async () => {
	const counts = {}
	for (const { kind, id } of files) {
		const { [id]: mine } = await ours.state.keys.get(kind, [id])
		const { [id]: theirs } = await original.keys.get(kind, [id])
		if (mine === null || mine === undefined) throw new Error(`${kind} ${id}: missing`)
		if (!sameValue(kind, mine, theirs)) throw new Error(`${kind} ${id}: differs`)
		counts[kind] = (counts[kind] ?? 0) + 1
	}
	return `${files.length} keys ${JSON.stringify(counts)}`
})

if (config.vectors) {
	const vectors = JSON.parse(readFileSync(config.vectors, 'utf-8'))
	const index = JSON.parse(readFileSync(config.peers_index, 'utf-8'))
	let account = openRepository(B, ours.state)

	// 2. Every future message, in order. A vector marked `requires_workaround` is one Baileys
	// itself cannot decrypt (vectors.json names its error): it must decrypt, or fail with exactly
	// that error (then nothing of the failed transaction is written, as with Baileys' own store).
	const decrypt = async (m) => {
		if (m.type === 'skdm') {
			await account.repo.processSenderKeyDistributionMessage({
				item: { groupId: m.group, axolotlSenderKeyDistributionMessage: b64(m.skdm_b64) },
				authorJid: m.author,
			})
			return 'processed'
		}
		const plaintext =
			m.type === 'skmsg'
				? await account.repo.decryptGroupMessage({ group: m.group, authorJid: m.author, msg: b64(m.ciphertext_b64) })
				: await account.repo.decryptMessage({ jid: m.jid, type: m.type, ciphertext: b64(m.ciphertext_b64) })
		if (!Buffer.from(plaintext).equals(b64(m.plaintext_b64))) throw new Error('plaintext differs')
		return 'decrypted'
	}
	for (const m of vectors.messages) {
		const line = `vector #${m.n} (${m.type}${m.requires_workaround ? `, ${m.requires_workaround}` : ''})`
		await r.check(line, async () => {
			if (!m.requires_workaround) return decrypt(m)
			try {
				return await decrypt(m)
			} catch (e) {
				if (`${e}` !== m.baileys_native_error) throw e
				return `Baileys' own failure, as vectors.json records for Baileys itself: ${e}`
			}
		})
	}

	// 3. Replies to every saved peer; 4. again after a reopen.
	const peers = new Map()
	const peer = async (name, p) => {
		if (!peers.has(name)) {
			const { state } = await B.useMultiFileAuthState(join(config.scenario_copy, p.auth_dir))
			peers.set(name, openRepository(B, state).repo)
		}
		return peers.get(name)
	}
	const reply = async (round) => {
		for (const [name, p] of Object.entries(index.peers)) {
			if (p.account_jid) {
				await r.check(`${round}: peer ${name} decrypts our 1:1 reply`, async () => {
					const data = Buffer.from(`${round} from Baileys over wa-auth-node to ${name}`)
					const { type, ciphertext } = await account.repo.encryptMessage({ jid: p.jid, data })
					const plaintext = await (await peer(name, p)).decryptMessage({ jid: p.account_jid, type, ciphertext })
					if (!Buffer.from(plaintext).equals(data)) throw new Error('plaintext differs')
					return type
				})
			}
		}
		const groups = new Map()
		for (const [name, p] of Object.entries(index.peers)) {
			for (const [group, g] of Object.entries(p.groups ?? {})) {
				if (g.has_account_sender_key) groups.set(group, [...(groups.get(group) ?? []), [name, p, g]])
			}
		}
		for (const [group, members] of groups) {
			const author = members[0][2].account_author_jid
			const data = Buffer.from(`${round}: group message from Baileys over wa-auth-node in ${group}`)
			let ciphertext
			await r.check(`${round}: Baileys encrypts to group ${group}`, async () => {
				;({ ciphertext } = await account.repo.encryptGroupMessage({ group, meId: author, data }))
			})
			for (const [name, p] of members) {
				await r.check(`${round}: peer ${name} decrypts our message in ${group}`, async () => {
					const plaintext = await (await peer(name, p)).decryptGroupMessage({ group, authorJid: author, msg: ciphertext })
					if (!Buffer.from(plaintext).equals(data)) throw new Error('plaintext differs')
				})
			}
		}
	}
	await reply('reply')
	await r.check('close and reopen the store', async () => {
		await ours.close()
		ours = await openOurs()
		account = openRepository(B, ours.state)
	})
	await reply('after reopen')
}
await ours.close()
r.finish()
