// Type-checked (never run) by `cargo xtask node-test` against every installed Baileys: the
// package's declarations must fit Baileys' own types in the documented one-line switch, and
// must still reject what is wrong (each `@ts-expect-error` fails the check if no error is
// found on the line below it).

import makeWASocket, {
	type AuthenticationCreds,
	type AuthenticationState,
	type SignalKeyStore,
	makeCacheableSignalKeyStore,
} from 'baileys'
import {
	type AuthState,
	type PostgresOptions,
	WaAuthError,
	useBaileysFolderAuthState,
	useNativeAuthState,
	usePostgresAuthState,
} from 'wa-auth-node'

// Baileys' logger interface (pino in real programs); required by Baileys 6's cache.
type Logger = NonNullable<Parameters<typeof makeCacheableSignalKeyStore>[1]>
const silent = (): void => {}
const logger: Logger = {
	level: 'silent',
	child: () => logger,
	trace: silent,
	debug: silent,
	info: silent,
	warn: silent,
	error: silent,
}

export async function nativeSwitch(): Promise<void> {
	const { state, saveCreds, close }: AuthState = await useNativeAuthState('auth_native')
	const sock = makeWASocket({
		auth: { creds: state.creds, keys: makeCacheableSignalKeyStore(state.keys, logger) },
	})
	sock.ev.on('creds.update', saveCreds)
	await close()
}

export async function folderAndPostgres(): Promise<void> {
	const folder = await useBaileysFolderAuthState('auth_info', { fsync: true, baileysVersion: 7 })
	const whole: AuthenticationState = folder.state
	const keys: SignalKeyStore = folder.state.keys
	const creds: AuthenticationCreds = folder.state.creds
	await keys.set({ 'pre-key': { '1': null } })
	void whole, creds
	const options: PostgresOptions = {
		connectionString: 'host=db user=wa dbname=wa sslmode=verify-full sslrootcert=/etc/ca.pem',
		instanceId: 'account-1',
		takeover: 'after-expiry',
		writeBehind: false,
	}
	const pg = await usePostgresAuthState(options)
	makeWASocket({ auth: { creds: pg.state.creds, keys: pg.state.keys } })
	await usePostgresAuthState({ instanceId: 'from-the-PG-environment' })
}

export async function errors(): Promise<void> {
	try {
		await useNativeAuthState('auth_native')
	} catch (e) {
		if (e instanceof WaAuthError && e.code === 'ALREADY_OWNED') return
		throw e
	}
}

export async function misuse(): Promise<void> {
	// @ts-expect-error the location comes first and is a path
	await useNativeAuthState(42)
	// @ts-expect-error a PostgreSQL store needs its instance id
	await usePostgresAuthState({ connectionString: 'host=db' })
	// @ts-expect-error takeover is 'never' or 'after-expiry'
	await usePostgresAuthState({ instanceId: 'a', takeover: 'always' })
	const { state } = await useNativeAuthState('auth_native')
	// @ts-expect-error ids are a list
	await state.keys.get('session', 'one-id')
	// @ts-expect-error there is no such error code
	if (new WaAuthError().code === 'NO_SUCH_CODE') return
}
