// A process holding (or trying to hold) one PostgreSQL instance through wa-auth-node, driven by
// postgres.mjs: one JSON command per stdin line, one JSON answer per stdout line.
//   {"op":"open","options":{...}}  {"op":"set","data":{...}}  {"op":"get","type":"...","ids":[...]}
//   {"op":"close"}
// Answers: {"ok":true,"value":...} or {"ok":false,"code":"...","message":"..."}.

import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const pkgDir = process.argv[2]
const pkg = createRequire(join(pkgDir, 'package.json'))(pkgDir)
let auth = null

const ops = {
	async open({ options }) {
		auth = await pkg.usePostgresAuthState(options)
		return auth.state.creds.registrationId
	},
	set: ({ data }) => auth.state.keys.set(data),
	get: ({ type, ids }) => auth.state.keys.get(type, ids),
	close: () => auth.close(),
}

process.stdout.write('{"ok":true,"value":"ready"}\n')
for await (const line of createInterface({ input: process.stdin })) {
	const command = JSON.parse(line)
	let answer
	try {
		answer = { ok: true, value: (await ops[command.op](command)) ?? null }
	} catch (e) {
		answer = { ok: false, code: e.code ?? null, message: e.message }
	}
	process.stdout.write(`${JSON.stringify(answer)}\n`)
}
