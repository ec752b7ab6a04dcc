// The datastore room (lib/datastore/): where tenants' databases live, how one is made and dropped. This file is its
// interface, free of cdk8s: the server settings constructs resolve once, and the one question the rest of the code
// asks, "which server holds this tenant's database" (TenantDatastore). Today there is one server; several servers
// (a pool, chosen per tenant) are a change inside this room.
import { isConfigKey } from '../api-validation';
import { checkDnsSubdomain, checkInteger, KubeflexConfigError } from '../errors';
import { POSTGRES_NAME, POSTGRES_PASSWORD_KEY } from '../hosting-config';
import { HOSTING_NAMESPACE, TenantNames } from '../names';
import { POSTGRES_CA_KEY, POSTGRES_TLS_SECRET } from '../wire';

/** libpq `sslmode` used by kine and the controller. */
export type PostgresSslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** Where k8s-type tenants find their PostgreSQL, resolved once by KubeflexHosting. */
export interface PostgresEndpoint {
  /** Host name. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Role the controller makes and drops tenant databases as. */
  readonly superuser: string;
  /** Secret in `kubeflex-system` holding that role's password. */
  readonly passwordSecretName: string;
  /** Key of the password in that Secret. */
  readonly passwordSecretKey: string;
  /** libpq sslmode. */
  readonly sslMode: PostgresSslMode;
  /** Secret in `kubeflex-system` and key holding the CA that signed the server's certificate, when known. */
  readonly ca?: { readonly secretName: string; readonly key: string };
}

/** An existing PostgreSQL server to use instead of the bundled one. */
export interface ExternalPostgresOptions {
  /** Host name of the server as seen from the hosting cluster. */
  readonly host: string;
  /** TCP port. @default 5432 */
  readonly port?: number;
  /** Superuser (or a role with CREATEDB and CREATEROLE) used to provision tenant databases. @default "postgres" */
  readonly superuser?: string;
  /** Secret in `kubeflex-system` that holds the superuser's password. */
  readonly passwordSecretName: string;
  /** Key of the password in that Secret. @default "postgres-password" */
  readonly passwordSecretKey?: string;
  /**
   * Secret in `kubeflex-system` with the CA certificate (PEM) that signed the server's certificate. With it, kine, the
   * and the controller verify the server (`verify-full` by default).
   * @default - none: the server is not verified, and sslMode defaults to "prefer"
   */
  readonly caSecretName?: string;
  /** Key of the CA certificate in caSecretName. @default "ca.crt" */
  readonly caSecretKey?: string;
}

/** Which server holds a tenant's database: the datastore's one question. */
export interface TenantDatastore {
  /** The server of `tenant`'s database, or undefined when the install has none (k8s planes are refused). */
  serverFor(tenant: TenantNames): PostgresEndpoint | undefined;
}

/** The datastore of an install with one server (or none): every tenant's database is on it. */
export function singleServer(server: PostgresEndpoint | undefined): TenantDatastore {
  return { serverFor: () => server };
}

/** The datastore of a hosting install: today its one server (`postgres`); a pool would be chosen here. */
export function datastoreOf(hosting: { readonly postgres?: PostgresEndpoint }): TenantDatastore {
  return singleServer(hosting.postgres);
}

/** One PostgreSQL choice: bundled (with options) or external or none. */
export function checkPostgresChoice(
  where: string,
  props: { readonly externalPostgres?: unknown; readonly installPostgres?: boolean; readonly postgres?: unknown },
): void {
  if (props.externalPostgres && props.installPostgres) {
    throw new KubeflexConfigError(where, 'installPostgres', true, 'contradicts externalPostgres; set only one');
  }
  if (props.externalPostgres && props.postgres) {
    throw new KubeflexConfigError(
      where,
      'postgres',
      props.postgres,
      'options apply to the bundled PostgreSQL only, but externalPostgres is set',
    );
  }
  if (props.installPostgres === false && props.postgres) {
    throw new KubeflexConfigError(where, 'postgres', props.postgres, 'options given but installPostgres is false');
  }
}

/** libpq sslmode: verify-full when the CA is known, else prefer; verifying needs the CA. */
export function sslModeFor(where: string, requested: PostgresSslMode | undefined, ca: unknown): PostgresSslMode {
  const mode = requested ?? (ca ? 'verify-full' : 'prefer');
  if (!ca && (mode === 'verify-ca' || mode === 'verify-full')) {
    throw new KubeflexConfigError(
      where,
      'postgresSslMode',
      mode,
      'needs the CA of the server: set externalPostgres.caSecretName',
    );
  }
  return mode;
}

/** The bundled server, reached through its Service, verified with the CA the controller mints. */
export function bundledPostgresEndpoint(where: string, mode: PostgresSslMode | undefined): PostgresEndpoint {
  return {
    host: `${POSTGRES_NAME}.${HOSTING_NAMESPACE}.svc`,
    port: 5432,
    superuser: 'postgres',
    passwordSecretName: POSTGRES_NAME,
    passwordSecretKey: POSTGRES_PASSWORD_KEY,
    sslMode: sslModeFor(where, mode, true),
    ca: { secretName: POSTGRES_TLS_SECRET, key: POSTGRES_CA_KEY },
  };
}

/** A server the platform team runs, checked as the API server checks the names it refers to. */
export function externalPostgresEndpoint(
  where: string,
  ext: ExternalPostgresOptions,
  mode: PostgresSslMode | undefined,
): PostgresEndpoint {
  checkDnsSubdomain(where, 'externalPostgres.host', ext.host);
  checkInteger(where, 'externalPostgres.port', ext.port ?? 5432, 1, 65535);
  checkDnsSubdomain(where, 'externalPostgres.passwordSecretName', ext.passwordSecretName);
  if (ext.caSecretName !== undefined) checkDnsSubdomain(where, 'externalPostgres.caSecretName', ext.caSecretName);
  if (ext.caSecretKey !== undefined) {
    if (ext.caSecretName === undefined)
      throw new KubeflexConfigError(where, 'externalPostgres.caSecretKey', ext.caSecretKey, 'needs caSecretName');
    if (!isConfigKey(ext.caSecretKey))
      throw new KubeflexConfigError(
        where,
        'externalPostgres.caSecretKey',
        ext.caSecretKey,
        'is not a valid Secret key (letters, digits, "-", "_" and ".")',
      );
  }
  const ca = ext.caSecretName ? { secretName: ext.caSecretName, key: ext.caSecretKey ?? POSTGRES_CA_KEY } : undefined;
  return {
    ca,
    host: ext.host,
    port: ext.port ?? 5432,
    superuser: ext.superuser ?? 'postgres',
    passwordSecretName: ext.passwordSecretName,
    passwordSecretKey: ext.passwordSecretKey ?? POSTGRES_PASSWORD_KEY,
    sslMode: sslModeFor(where, mode, ca),
  };
}
