// Shared by the Node scripts of `cargo xtask interop` and `cargo xtask node-test`: loading an
// installed Baileys (6 or 7) from its package folder, a silent logger, Baileys' key-store stack
// over any SignalKeyStore, and the kind/id of a key file name.

import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

/** A pino-shaped logger that prints nothing. */
export const silent = {
	level: 'silent',
	trace() {},
	debug() {},
	info() {},
	warn() {},
	error() {},
	fatal() {},
	child() {
		return silent
	},
}

/** Everything the scripts use of the Baileys installed in `dir` (its package folder). */
export async function loadBaileys(dir, version) {
	const load = async (relative) => {
		const mod = await import(pathToFileURL(join(dir, relative)).href)
		return { ...(mod.default ?? {}), ...mod }
	}
	const baileys = await load('lib/index.js')
	const { makeLibSignalRepository } = await load('lib/Signal/libsignal.js')
	const require = createRequire(join(dir, 'package.json'))
	const libsignal = require('libsignal')
	const v6 = version.startsWith('6.')
	const SenderKeyRecord = v6
		? require('./WASignalGroup/sender_key_record.js')
		: (await load('lib/Signal/Group/sender-key-record.js')).SenderKeyRecord
	return { ...baileys, makeLibSignalRepository, libsignal, SenderKeyRecord, version, v6 }
}

/** Baileys' own stack over `state` (creds + keys): cache, transactions, libsignal repository. */
export function openRepository(B, state) {
	const keys = B.addTransactionCapability(B.makeCacheableSignalKeyStore(state.keys, silent), silent, {
		maxCommitRetries: 1,
		delayBetweenTriesMs: 10,
	})
	const auth = { creds: state.creds, keys }
	return { keys, repo: B.makeLibSignalRepository(auth, silent) }
}

export const b64 = (text) => Buffer.from(text, 'base64')

/** Baileys' ten key kinds. */
export const KINDS = [
	'pre-key', 'session', 'sender-key', 'sender-key-memory', 'app-state-sync-key',
	'app-state-sync-version', 'lid-mapping', 'device-list', 'tctoken', 'identity-key',
]

/** The kind and id of a key file name (the inverse of Baileys' fixFileName), or null. */
export function classify(name) {
	if (!name.endsWith('.json')) return null
	const stem = name.slice(0, -'.json'.length)
	const kind = KINDS.filter((k) => stem.startsWith(`${k}-`) && stem.length > k.length + 1)
		.sort((a, b) => b.length - a.length)[0]
	if (!kind) return null
	let id = stem.slice(kind.length + 1).replaceAll('__', '/')
	if (kind === 'sender-key') {
		const parts = id.split('--')
		if (parts.length >= 3) {
			const device = parts.pop()
			const user = parts.pop()
			id = `${parts.join('--')}::${user}::${device}`
		}
	}
	return { kind, id }
}

/** A checker that prints each result and remembers failures. */
export function reporter(label) {
	const failures = []
	let passed = 0
	return {
		ok(line) {
			passed++
			console.log(`  ok   ${line}`)
		},
		fail(line) {
			console.log(`  FAIL ${line}`)
			failures.push(line)
		},
		async check(line, fn) {
			try {
				const detail = await fn()
				this.ok(detail ? `${line}: ${detail}` : line)
			} catch (e) {
				this.fail(`${line}: ${e?.stack ?? e}`)
			}
		},
		finish() {
			if (failures.length) {
				console.log(`${label}: ${failures.length} check(s) FAILED:`)
				for (const f of failures) console.log(`  - ${f.split('\n')[0]}`)
			} else {
				console.log(`${label}: all ${passed} checks passed`)
			}
			// Baileys leaves timers (caches) running; the checks are done.
			process.exit(failures.length ? 1 : 0)
		},
	}
}
