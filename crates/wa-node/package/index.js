'use strict'
// Baileys' auth state over the wa-auth stores: the thin JS side of the `wa-node` addon.
//
// Values cross into Rust as JSON text in Baileys' own shapes; the only conversion done here is
// Buffer <-> {"type":"Buffer","data":"<base64>"} (what Baileys' BufferJSON does for its files).
// Every other rule (shapes, checks, atomic commits) lives in the Rust core. See docs/node.md.

const { existsSync, readFileSync } = require('node:fs')
const { dirname, join, resolve } = require('node:path')

const addon = loadAddon()
const SEPARATOR = addon.errorSeparator()

function loadAddon() {
	const path = process.env.WA_NODE_ADDON || join(__dirname, 'wa_node.node')
	try {
		return require(path)
	} catch (e) {
		throw new Error(
			`wa-auth-node: cannot load the native addon ${path} (${e.message}); ` +
				'build the package with `cargo xtask node-package` and install that tarball'
		)
	}
}

/** An error of the store: `code` is stable (see docs/node.md), `message` is the Rust error's. */
class WaAuthError extends Error {
	constructor(code, message) {
		super(message)
		this.name = 'WaAuthError'
		this.code = code
	}
}

const invalid = (message) => new WaAuthError('INVALID', message)

/** The addon's errors carry "<CODE><separator><message>"; anything else passes unchanged. */
function translate(error) {
	const text = error && typeof error.message === 'string' ? error.message : ''
	const at = text.indexOf(SEPARATOR)
	return at < 0 ? error : new WaAuthError(text.slice(0, at), text.slice(at + SEPARATOR.length))
}

async function call(promise) {
	try {
		return await promise
	} catch (e) {
		throw translate(e)
	}
}

function callNow(fn) {
	try {
		return fn()
	} catch (e) {
		throw translate(e)
	}
}

// BufferJSON: Buffers and Uint8Arrays out as {type:'Buffer', data:<base64>}, and such objects
// (base64 or number-array data) back in as Buffers.
function replacer(key, value) {
	const original = this[key]
	if (original instanceof Uint8Array) {
		return {
			type: 'Buffer',
			data: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64'),
		}
	}
	return value
}

function reviver(_, value) {
	if (value !== null && typeof value === 'object' && value.type === 'Buffer') {
		if (typeof value.data === 'string') return Buffer.from(value.data, 'base64')
		if (Array.isArray(value.data)) return Buffer.from(value.data)
	}
	return value
}

function stringify(value, what) {
	try {
		return JSON.stringify(value, replacer)
	} catch (e) {
		throw invalid(`${what} cannot be serialised: ${e.message}`)
	}
}

const describe = (value) =>
	value === null
		? 'null'
		: Buffer.isBuffer(value)
			? 'a Buffer'
			: Array.isArray(value)
				? 'an array'
				: typeof value

const isPlainObject = (value) =>
	value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)

/** `keys.set` data as JSON text: `undefined` values become `null` (deletes, as in Baileys). */
function wireData(data) {
	if (!isPlainObject(data)) {
		throw invalid(`keys.set(data): data must be an object { [type]: { [id]: value | null } }, got ${describe(data)}`)
	}
	const out = {}
	for (const type of Object.keys(data)) {
		const entries = data[type]
		if (!isPlainObject(entries)) {
			throw invalid(
				`keys.set(data): data[${JSON.stringify(type)}] must be an object { [id]: value | null }, got ${describe(entries)}`
			)
		}
		const wire = {}
		for (const id of Object.keys(entries)) {
			const value = entries[id]
			wire[id] = value === undefined ? null : value
		}
		out[type] = wire
	}
	return stringify(out, 'keys.set(data)')
}

function wireIds(type, ids) {
	if (typeof type !== 'string') throw invalid(`keys.get(type, ids): type must be a string, got ${describe(type)}`)
	if (!Array.isArray(ids)) throw invalid(`keys.get(${JSON.stringify(type)}, ids): ids must be an array, got ${describe(ids)}`)
	const out = new Array(ids.length)
	for (let i = 0; i < ids.length; i++) {
		const id = ids[i]
		if (typeof id === 'string') out[i] = id
		else if (Number.isSafeInteger(id)) out[i] = String(id)
		else throw invalid(`keys.get(${JSON.stringify(type)}, ids): ids[${i}] must be a string, got ${describe(id)}`)
	}
	return out
}

const parse = ({ json, buffers }) => (buffers ? JSON.parse(json, reviver) : JSON.parse(json))

/** The major version of the Baileys installed next to the program, if it can be found. */
function installedBaileys() {
	const bases = [process.cwd()]
	if (require.main && require.main.filename) bases.push(dirname(require.main.filename))
	for (const base of bases) {
		for (let dir = resolve(base); ; dir = dirname(dir)) {
			for (const name of ['baileys', '@whiskeysockets/baileys']) {
				const manifest = join(dir, 'node_modules', name, 'package.json')
				if (!existsSync(manifest)) continue
				try {
					const major = parseInt(JSON.parse(readFileSync(manifest, 'utf-8')).version, 10)
					if (major === 6 || major === 7) return major
				} catch {
					// not readable: keep looking
				}
			}
			if (dirname(dir) === dir) break
		}
	}
	return undefined
}

function wireOptions(options, what) {
	if (options === undefined) options = {}
	if (!isPlainObject(options)) throw invalid(`${what}: options must be an object, got ${describe(options)}`)
	const out = { ...options }
	if (out.baileysVersion === undefined) {
		delete out.baileysVersion
		const installed = installedBaileys()
		if (installed !== undefined) out.installedBaileys = installed
	}
	return stringify(out, `${what} options`)
}

function checkDir(dir, what) {
	if (typeof dir !== 'string' || dir.length === 0) {
		throw invalid(`${what}(dir): dir must be a non-empty string (a folder path), got ${describe(dir)}`)
	}
	return resolve(dir)
}

/** `{ state: { creds, keys }, saveCreds, close }` over an open addon store. */
function authState(store) {
	const creds = JSON.parse(store.creds(), reviver)
	const fromMemory = store.readsFromMemory()
	let closed = false
	// Creds snapshots are numbered so the store never lets an older one replace a newer one.
	let seq = 0
	let savedSeq = 0
	let savedJson = stringify(creds, 'creds')

	const ensureOpen = () => {
		if (closed) throw new WaAuthError('CLOSED', 'the store is closed')
	}
	const saved = (json, n) => {
		if (n > savedSeq) {
			savedSeq = n
			savedJson = json
		}
	}

	const keys = {
		async get(type, ids) {
			ensureOpen()
			const list = wireIds(type, ids)
			if (list.length === 0) return {}
			return parse(fromMemory ? callNow(() => store.getNow(type, list)) : await call(store.get(type, list)))
		},
		async set(data) {
			ensureOpen()
			const wire = wireData(data)
			// Creds changed since they were last stored ride along in the same atomic commit.
			const json = stringify(creds, 'creds')
			const n = json === savedJson ? 0 : ++seq
			await call(store.set(wire, n ? json : null, n))
			if (n) saved(json, n)
		},
		async clear() {
			ensureOpen()
			await call(store.clear())
		},
	}

	return {
		state: { creds, keys },
		async saveCreds() {
			ensureOpen()
			const json = stringify(creds, 'creds')
			const n = ++seq
			await call(store.saveCreds(json, n))
			saved(json, n)
		},
		async close() {
			if (closed) return
			closed = true
			await call(store.close())
		},
	}
}

/** Baileys' auth state in the native store (a crash-safe binary directory) at `dir`. */
async function useNativeAuthState(dir, options) {
	const path = checkDir(dir, 'useNativeAuthState')
	const wire = wireOptions(options, 'useNativeAuthState')
	return authState(await call(addon.openNative(path, wire)))
}

/** Baileys' auth state in the Baileys folder `dir`, written crash-safely (still readable by Baileys). */
async function useBaileysFolderAuthState(dir, options) {
	const path = checkDir(dir, 'useBaileysFolderAuthState')
	const wire = wireOptions(options, 'useBaileysFolderAuthState')
	return authState(await call(addon.openFolder(path, wire)))
}

/** Baileys' auth state in PostgreSQL: `{ connectionString, instanceId, takeover, writeBehind, ... }`. */
async function usePostgresAuthState(options) {
	if (!isPlainObject(options)) {
		throw invalid(`usePostgresAuthState(options): options must be an object, got ${describe(options)}`)
	}
	if (typeof options.instanceId !== 'string' || options.instanceId.length === 0) {
		throw invalid('usePostgresAuthState(options): options.instanceId must be a non-empty string')
	}
	// Omitted or empty: libpq's environment variables (PGHOST, ...) say where to connect.
	if (options.connectionString !== undefined && typeof options.connectionString !== 'string') {
		throw invalid(
			`usePostgresAuthState(options): options.connectionString must be a string, got ${describe(options.connectionString)}`,
		)
	}
	const wire = wireOptions(options, 'usePostgresAuthState')
	return authState(await call(addon.openPostgres(wire)))
}

module.exports = {
	useNativeAuthState,
	useBaileysFolderAuthState,
	usePostgresAuthState,
	WaAuthError,
	BufferJSON: { replacer, reviver },
}
