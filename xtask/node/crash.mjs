// Proof 3 of `cargo xtask node-test`: SIGKILL a Node child running Baileys transactions over our
// native store and over a Baileys folder, at random moments, many times; after every kill the
// reopened store holds every transaction whose set resolved and no part of any other (the
// checks are in crash-child.mjs, which the next child runs on open).
//
// Usage: node crash.mjs <config.json>
// config: { baileys_dir, version, package, kills, seed, pool, stores: [{ kind, dir, max_delay_ms }] }
// `pool` children per store are loaded ahead of their turn.
// Each turn kills the child 2 ms + up to max_delay_ms after its store is open (4 turns in 5)
// or after it was told to open it (1 in 5).
// The stores run side by side (two children at a time); each child is started ahead of its turn
// (Node and Baileys loaded, waiting on stdin), so a turn costs only the store's open and the run.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const configPath = process.argv[2]
const config = JSON.parse(readFileSync(configPath, 'utf-8'))
const childScript = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.mjs')

// A small seeded generator, so a failing run can be repeated (WA_CRASH_SEED).
let seed = BigInt(config.seed) & 0xffffffffffffffffn
const random = () => {
	seed = (seed * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn
	return Number(seed >> 11n) / 2 ** 53
}

function child(store) {
	const proc = spawn(process.execPath, [childScript, configPath, store.kind, store.dir], {
		stdio: ['pipe', 'pipe', 'inherit'],
	})
	const lines = []
	let waiting = null
	createInterface({ input: proc.stdout }).on('line', (line) => {
		lines.push(line)
		if (waiting) waiting()
	})
	const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
	const next = async () => {
		while (!lines.length) await new Promise((resolve) => (waiting = resolve))
		waiting = null
		return lines.shift()
	}
	return { proc, next, exited, lines }
}

async function expectLine(c, prefix) {
	const line = await c.next()
	if (!line.startsWith(prefix)) throw new Error(`child said ${JSON.stringify(line)}, expected ${prefix}`)
	return line.slice(prefix.length).trim()
}

async function runStore(store) {
	const stats = { kind: store.kind, kills: 0, acked: 0, duringOpen: 0, failures: [] }
	let c = child(store)
	await expectLine(c, 'ready')
	c.proc.stdin.write('setup\n')
	const offset = Number(await expectLine(c, 'setup'))
	await c.exited
	let acked = 0
	// Children of the next turns load (Node, Baileys, the addon) while this one runs.
	const pool = Array.from({ length: config.pool }, () => child(store))
	c = pool.shift()
	for (let turn = 1; turn <= config.kills; turn++) {
		await expectLine(c, 'ready')
		const current = c
		current.proc.stdin.write(`go ${acked} ${offset}\n`)
		pool.push(child(store))
		// Most kills land while transactions run (timed from the store being open), the others
		// anywhere from the start (while the store opens and recovers, too).
		const delay = 2 + random() * store.max_delay_ms
		const fromOpen = random() < 0.8
		let timer = fromOpen ? null : setTimeout(() => current.proc.kill('SIGKILL'), delay)
		// A child that never opens its store is a failure, not a hang.
		const watchdog = setTimeout(() => {
			stats.failures.push(`turn ${turn}: the store did not open within 30 s`)
			current.proc.kill('SIGKILL')
		}, 30_000)
		let opened = false
		const reader = (async () => {
			for (;;) {
				let line
				try {
					line = await Promise.race([current.next(), current.exited.then(() => null)])
				} catch {
					return
				}
				if (line === null) return
				if (line.startsWith('state ')) {
					opened = true
					if (fromOpen) timer = setTimeout(() => current.proc.kill('SIGKILL'), delay)
				} else if (line.startsWith('ack ')) acked = Math.max(acked, Number(line.slice(4)))
				else if (line.startsWith('bad ')) stats.failures.push(`turn ${turn}: ${line.slice(4)}`)
			}
		})()
		const { signal } = await current.exited
		clearTimeout(timer)
		clearTimeout(watchdog)
		await reader
		// Lines the child wrote before it died but after the last read.
		for (const line of current.lines.splice(0)) {
			if (line.startsWith('ack ')) acked = Math.max(acked, Number(line.slice(4)))
			else if (line.startsWith('bad ')) stats.failures.push(`turn ${turn}: ${line.slice(4)}`)
			else if (line.startsWith('state ')) opened = true
		}
		if (signal === 'SIGKILL') stats.kills++
		else stats.failures.push(`turn ${turn}: the child ended by itself (${signal ?? 'exit'})`)
		if (!opened) stats.duringOpen++
		c = pool.shift()
		if (stats.failures.length) break
	}
	await expectLine(c, 'ready')
	c.proc.stdin.write(`check ${acked} ${offset}\n`)
	const last = await c.next()
	await c.exited
	for (const spare of pool) spare.proc.kill('SIGKILL')
	if (!last.startsWith('state ')) stats.failures.push(`final check: ${last}`)
	stats.acked = acked
	stats.final = last
	return stats
}

const started = Date.now()
const results = await Promise.all(config.stores.map(runStore))
let failed = 0
for (const s of results) {
	console.log(
		`  ${s.failures.length ? 'FAIL' : 'ok  '} ${s.kind}: ${s.kills} SIGKILLs (${s.duringOpen} before the store was open), ` +
			`${s.acked} transactions acknowledged, every one present after every kill, none in part; final ${s.final}`
	)
	for (const f of s.failures) console.log(`       ${f}`)
	failed += s.failures.length ? 1 : 0
}
console.log(`crash test: ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${config.seed}`)
process.exit(failed ? 1 : 0)
