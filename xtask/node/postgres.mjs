// Proof 4 of `cargo xtask node-test`: one owner per PostgreSQL instance, across processes.
//
// Usage: node postgres.mjs <config.json>   config: { package, connection_string, instance }
// 1. A opens the instance and sets a key (durable when set resolves); B is refused
//    (ALREADY_OWNED), also with takeover 'after-expiry' while A's lease is live.
// 2. A is SIGKILLed; once its lease expired, B takes over and reads A's key.
// 3. B is frozen (SIGSTOP) past its lease; C takes over; B, thawed, is fenced: its next set
//    is refused (OWNERSHIP_LOST, or UNHEALTHY while the renewal that tells it is in flight) and
//    its reads soon reject with OWNERSHIP_LOST. Nothing B wrote lands.
// 4. The same with a write-behind owner D: its set after the takeover may resolve (queued), but
//    it never lands, and D's close reports OWNERSHIP_LOST.
// 5. Connecting as libpq does: `sslmode=require` against the (TLS-less) test server is refused;
//    the PG* environment variables alone, with no connection string, reach the database.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { reporter } from '../interop/baileys.mjs'

const config = JSON.parse(readFileSync(process.argv[2], 'utf-8'))
const script = join(dirname(fileURLToPath(import.meta.url)), 'pg-actor.mjs')
const r = reporter('postgres ownership')
const TTL = 1500
const base = {
	connectionString: config.connection_string,
	instanceId: config.instance,
	leaseTtlMs: TTL,
	leaseRenewIntervalMs: 250,
	unhealthyAfterMs: 1000,
	baileysVersion: 7,
}
const takeover = { ...base, takeover: 'after-expiry', leaseWaitMs: 8000 }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function actor(name, env = process.env) {
	const proc = spawn(process.execPath, [script, config.package], { stdio: ['pipe', 'pipe', 'inherit'], env })
	const answers = []
	const waiters = []
	createInterface({ input: proc.stdout }).on('line', (line) => {
		const answer = JSON.parse(line)
		const waiter = waiters.shift()
		if (waiter) waiter(answer)
		else answers.push(answer)
	})
	const next = () => (answers.length ? Promise.resolve(answers.shift()) : new Promise((resolve) => waiters.push(resolve)))
	await next()
	const send = (command) => {
		proc.stdin.write(`${JSON.stringify(command)}\n`)
		return next()
	}
	return {
		name,
		proc,
		open: (options) => send({ op: 'open', options }),
		set: (data) => send({ op: 'set', data }),
		get: (type, ids) => send({ op: 'get', type, ids }),
		close: () => send({ op: 'close' }),
		stop: () => proc.stdin.end(),
	}
}

const expectOk = (answer, what) => {
	if (!answer.ok) throw new Error(`${what}: ${answer.code} ${answer.message}`)
	return answer.value
}
const expectCode = (answer, code, what) => {
	if (answer.ok || answer.code !== code) throw new Error(`${what}: expected ${code}, got ${JSON.stringify(answer)}`)
	return answer.message
}

const a = await actor('A')
const b = await actor('B')
await r.check('A opens the instance and its set resolves', async () => {
	expectOk(await a.open(base), 'A open')
	expectOk(await a.set({ 'lid-mapping': { a1: 'from-a' } }), 'A set')
})
await r.check('B is refused while A owns it', async () =>
	expectCode(await b.open(base), 'ALREADY_OWNED', 'B open').slice(0, 120))
await r.check('B is refused with takeover after-expiry while A renews its lease', async () =>
	expectCode(await b.open({ ...takeover, leaseWaitMs: 0 }), 'ALREADY_OWNED', 'B open'))
await r.check('A is SIGKILLed; B takes over after the lease expired and reads A\'s durable set', async () => {
	a.proc.kill('SIGKILL')
	const started = Date.now()
	expectOk(await b.open(takeover), 'B open')
	const waited = Date.now() - started
	const got = expectOk(await b.get('lid-mapping', ['a1']), 'B get')
	if (got.a1 !== 'from-a') throw new Error(`a1 = ${JSON.stringify(got.a1)}`)
	return `took over after ${waited} ms`
})

const c = await actor('C')
await r.check('B frozen past its lease; C takes over', async () => {
	b.proc.kill('SIGSTOP')
	await sleep(TTL + 500)
	expectOk(await c.open(takeover), 'C open')
	expectOk(await c.set({ 'lid-mapping': { c1: 'from-c' } }), 'C set')
})
await r.check('B thawed is fenced: its set is refused, and its reads soon reject with OWNERSHIP_LOST', async () => {
	b.proc.kill('SIGCONT')
	// Thawed, B may first only know that its lease can no longer be trusted (UNHEALTHY: the
	// renewal that tells it is still in flight on a loaded machine); both refuse the write.
	// It must then learn it was fenced, within a few seconds.
	const set = await b.set({ 'lid-mapping': { b2: 'from-b-after' } })
	if (set.ok || (set.code !== 'OWNERSHIP_LOST' && set.code !== 'UNHEALTHY')) throw new Error(`B set: ${JSON.stringify(set)}`)
	const deadline = Date.now() + 10000
	let get = await b.get('lid-mapping', ['a1'])
	// (An unhealthy store still serves reads from memory; a fenced one refuses them.)
	while ((get.ok || get.code === 'UNHEALTHY') && Date.now() < deadline) {
		await sleep(200)
		get = await b.get('lid-mapping', ['a1'])
	}
	expectCode(get, 'OWNERSHIP_LOST', 'B get')
	return `set refused (${set.code}), then reads say OWNERSHIP_LOST`
})
const d = await actor('D')
await r.check('nothing B wrote after the takeover landed (C closed, D opens and reads)', async () => {
	expectOk(await c.close(), 'C close')
	expectOk(await d.open({ ...base, writeBehind: true }), 'D open')
	const got = expectOk(await d.get('lid-mapping', ['a1', 'c1', 'b2']), 'D get')
	if (got.a1 !== 'from-a' || got.c1 !== 'from-c' || got.b2 !== null) throw new Error(JSON.stringify(got))
})

const e = await actor('E')
await r.check('write-behind D fenced: a set after the takeover never lands, close says OWNERSHIP_LOST', async () => {
	d.proc.kill('SIGSTOP')
	await sleep(TTL + 500)
	expectOk(await e.open(takeover), 'E open')
	d.proc.kill('SIGCONT')
	const set = await d.set({ 'lid-mapping': { d2: 'from-d-after' } })
	// A thawed replica may learn it lost the lease (OWNERSHIP_LOST) or only that its lease
	// can no longer be trusted (UNHEALTHY, when the renewal that would tell is still in
	// flight); both are refusals. What must hold: the write never lands, and close is fenced.
	if (!set.ok && set.code !== 'OWNERSHIP_LOST' && set.code !== 'UNHEALTHY') throw new Error(`D set: ${JSON.stringify(set)}`)
	expectCode(await d.close(), 'OWNERSHIP_LOST', 'D close')
	expectOk(await e.close(), 'E close')
	const f = await actor('F')
	expectOk(await f.open(base), 'F open')
	const got = expectOk(await f.get('lid-mapping', ['d2', 'c1']), 'F get')
	expectOk(await f.close(), 'F close')
	f.stop()
	if (got.d2 !== null || got.c1 !== 'from-c') throw new Error(JSON.stringify(got))
	return set.ok ? 'the set had resolved (queued), then was dropped by the fence' : `the set was refused (${set.code})`
})

// Connecting as libpq does: sslmode is honoured (the test cluster speaks no TLS, so `require`
// must be refused, never silently downgraded), and the PG* variables fill an empty string.
const g = await actor('G')
await r.check('sslmode=require against a server without TLS is refused', async () => {
	const answer = await g.open({ ...base, instanceId: 'tls-refused', connectionString: `${config.connection_string} sslmode=require` })
	if (answer.ok || !/tls|ssl/i.test(answer.message)) throw new Error(`expected a TLS refusal, got ${JSON.stringify(answer)}`)
	return `${answer.code}: ${answer.message.slice(0, 100)}`
})
const settings = Object.fromEntries(config.connection_string.split(/\s+/).map((pair) => pair.split('=')))
const fromEnv = { ...process.env, PGHOST: settings.host, PGPORT: settings.port, PGUSER: settings.user, PGDATABASE: settings.dbname }
const h = await actor('H', fromEnv)
await r.check('the PG* environment variables alone reach the database', async () => {
	const { connectionString, ...options } = base
	expectOk(await h.open({ ...options, instanceId: 'from-env' }), 'H open')
	expectOk(await h.set({ 'lid-mapping': { h1: 'from-env' } }), 'H set')
	expectOk(await h.close(), 'H close')
	const i = await actor('I')
	expectOk(await i.open({ ...base, instanceId: 'from-env' }), 'I open')
	const got = expectOk(await i.get('lid-mapping', ['h1']), 'I get')
	expectOk(await i.close(), 'I close')
	i.stop()
	if (got.h1 !== 'from-env') throw new Error(JSON.stringify(got))
})
for (const p of [b, c, d, e, g, h]) p.stop()
r.finish()
