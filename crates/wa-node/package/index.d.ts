// Type declarations of wa-auth-node. The shapes are structural so that the package needs no
// type dependency on Baileys: `state` is assignable to Baileys' `AuthenticationState`
// (`{ creds: AuthenticationCreds, keys: SignalKeyStore }`) in Baileys 6 and 7
// (`cargo xtask node-test` type-checks that against every installed Baileys).

/** Baileys' `AuthenticationCreds`, with Buffers where Baileys' own file store yields them.
 * Typed `any` on purpose: its required fields differ between Baileys versions, and only `any`
 * is assignable to each version's own type without this package depending on Baileys' types.
 * Annotate it with Baileys' type where you want it checked:
 * `const creds: AuthenticationCreds = state.creds`. */
export type AuthenticationCreds = any

/** Baileys' key types (`session`, `pre-key`, ...) or any other `[a-z0-9_-]{1,64}` namespace. */
export type KeyType =
	| 'pre-key'
	| 'session'
	| 'sender-key'
	| 'sender-key-memory'
	| 'app-state-sync-key'
	| 'app-state-sync-version'
	| 'lid-mapping'
	| 'device-list'
	| 'tctoken'
	| 'identity-key'
	| (string & {})

/** Baileys' `SignalKeyStore`. */
export interface SignalKeyStore {
	/** The stored values of `ids` (`null` where nothing is stored). Rejects with `CORRUPT` naming
	 * the key when a stored value cannot be read: never `null` for an unreadable value. */
	get(type: KeyType, ids: string[]): Promise<{ [id: string]: any }>
	/** ONE atomic commit of everything in `data` (`null`/`undefined` deletes), with the creds when
	 * they changed since last stored; resolves once durable (unless `writeBehind`). */
	set(data: { [type: string]: { [id: string]: any } }): Promise<void>
	/** Deletes every key (not the creds) in one commit. */
	clear(): Promise<void>
}

export interface AuthState {
	state: { creds: AuthenticationCreds; keys: SignalKeyStore }
	/** Stores `state.creds` as Baileys mutated it (one atomic, durable commit). */
	saveCreds(): Promise<void>
	/** Flushes and releases the store (its lock or lease); later calls reject with `CLOSED`. */
	close(): Promise<void>
}

export interface CommonOptions {
	/** The Baileys major version whose value shapes to use (sender keys differ). Default: what the
	 * stored data shows, else the Baileys installed next to the program, else 7. */
	baileysVersion?: 6 | 7
}

export interface NativeOptions extends CommonOptions {}

export interface FolderOptions extends CommonOptions {
	/** Sync every written file (default true). */
	fsync?: boolean
}

export interface PostgresOptions extends CommonOptions {
	/** libpq key-value string (`host=... user=... dbname=...`) or `postgresql://` URL, completed
	 * as libpq does from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
	 * `PGSSLROOTCERT` and the password file (`PGPASSFILE`, `~/.pgpass`). TLS (rustls) follows
	 * `sslmode` (`disable`, `prefer` (default), `require`, `verify-ca`, `verify-full`) with the
	 * roots of `sslrootcert`. Omitted or empty: the environment alone. */
	connectionString?: string
	/** The account's instance id (1..=256 bytes, no control characters). */
	instanceId: string
	/** Take over the lease of an owner whose lease expired (it crashed). Default `'never'`. */
	takeover?: 'never' | 'after-expiry'
	/** `set` resolves once queued instead of once durable (see docs/node.md for the crash window). */
	writeBehind?: boolean
	/** Schema of the tables. Default `wa_auth`. */
	schema?: string
	/** Lease owner id. Default `<host>:<pid>:<random>`. */
	ownerId?: string
	/** Connections of the pool shared by every instance on this connection string. Default 8. */
	poolSize?: number
	/** Lease duration without renewal. Default 30000. */
	leaseTtlMs?: number
	/** How often an idle lease is renewed. Default 10000. */
	leaseRenewIntervalMs?: number
	/** How long opening waits for a held lease. Default 0. */
	leaseWaitMs?: number
	/** How long commits gather before a flush. Default 5. */
	flushIntervalMs?: number
	/** How long failing rounds are retried before the store reports `UNHEALTHY`. Default 20000. */
	unhealthyAfterMs?: number
	/** Timeout of one database operation. Default 10000. */
	operationTimeoutMs?: number
}

export type ErrorCode =
	| 'ALREADY_OWNED'
	| 'OWNERSHIP_LOST'
	| 'CORRUPT'
	| 'UNSUPPORTED_VERSION'
	| 'INVALID'
	| 'NOT_FOUND'
	| 'CLOSED'
	| 'IO'
	| 'UNHEALTHY'
	| 'BACKEND'
	| 'COMMIT_UNKNOWN'
	| 'CHANGED_WHILE_READING'
	| 'READ_ONLY'
	| 'SIGNAL'
	| 'ERROR'

/** Every error of the store: an `Error` with a stable `code`. */
export declare class WaAuthError extends Error {
	readonly code: ErrorCode
}

/** Baileys' auth state in the native store (a crash-safe binary directory). */
export declare function useNativeAuthState(dir: string, options?: NativeOptions): Promise<AuthState>
/** Baileys' auth state in a Baileys folder, written crash-safely (Baileys can still read it). */
export declare function useBaileysFolderAuthState(dir: string, options?: FolderOptions): Promise<AuthState>
/** Baileys' auth state in PostgreSQL (one instance per account, one owner at a time). */
export declare function usePostgresAuthState(options: PostgresOptions): Promise<AuthState>

/** The Buffer <-> `{type:'Buffer', data}` conversion used at the boundary. */
export declare const BufferJSON: {
	replacer(this: any, key: string, value: any): any
	reviver(key: string, value: any): any
}
