// Baileys' own figures on this machine, for docs/benchmarks.md: load and save of a folder of
// 10 000 sessions with useMultiFileAuthState (what wa-store-compat's benches/compat.rs measures
// for the Rust store).
//
// Usage: node bench-baileys.mjs <baileys package dir> <a session file to copy>
// (the cache of `cargo xtask interop`, e.g. .interop-cache/v7.0.0-rc.9/node_modules/baileys,
// and fixtures/baileys/v7.0.0-rc.9/paired-with-sessions/auth/session-4915112345678.0.json).
// Sessions are copies of a real one under 10 000 ids; the folder is a temp dir, removed after.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [baileysDir, sessionFile] = process.argv.slice(2).map((p) => resolve(p))
const mod = await import(pathToFileURL(join(baileysDir, 'lib/index.js')).href)
const { useMultiFileAuthState, BufferJSON } = { ...(mod.default ?? {}), ...mod }
const libsignal = createRequire(join(baileysDir, 'package.json'))('libsignal')

const COUNT = 10_000
const session = JSON.parse(readFileSync(sessionFile, 'utf-8'), BufferJSON.reviver)
const ids = Array.from({ length: COUNT }, (_, i) => `49151${String(i).padStart(8, '0')}.0`)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const saves = []
const loads = []
for (let run = 0; run < 5; run++) {
	const dir = mkdtempSync(join(tmpdir(), 'baileys-10k-'))
	const { state } = await useMultiFileAuthState(dir)
	let t = performance.now()
	await state.keys.set({ session: Object.fromEntries(ids.map((id) => [id, session])) })
	saves.push(performance.now() - t)

	const fresh = (await useMultiFileAuthState(dir)).state
	t = performance.now()
	const loaded = await fresh.keys.get('session', ids)
	let open = 0
	for (const id of ids) {
		if (libsignal.SessionRecord.deserialize(loaded[id]).haveOpenSession()) open++
	}
	loads.push(performance.now() - t)
	if (open !== COUNT) throw new Error(`only ${open} sessions loaded`)
	rmSync(dir, { recursive: true, force: true })
}
const fmt = (xs) => `median ${median(xs).toFixed(0)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(', ')})`
console.log(`save 10k sessions (keys.set, no fsync): ${fmt(saves)}`)
console.log(`load 10k sessions (keys.get + SessionRecord.deserialize): ${fmt(loads)}`)
