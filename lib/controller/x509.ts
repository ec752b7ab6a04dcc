// Minimal X.509 minting with Node's crypto: ECDSA P-256 keys, certificates DER-encoded here. No dependency, no
// child process; every certificate is checked with Node's own X509Certificate parser in the tests and by openssl.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  randomBytes,
  sign,
} from 'crypto';
import { X509Certificate } from 'crypto';
import { isIP } from 'net';

// ---- DER ------------------------------------------------------------------------------------------------------
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, body: Buffer) => tlv(0xa0 + n, body);

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0] + parts[1]];
  for (const p of parts.slice(2)) {
    const chunk = [p & 0x7f];
    for (let v = p >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

const OID = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  cn: '2.5.4.3',
  o: '2.5.4.10',
  ou: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

// ---- Certificates -----------------------------------------------------------------------------------------------

/** A distinguished name: common name plus optional organizations (Kubernetes groups) and organizational unit. */
export interface Subject {
  readonly cn: string;
  readonly o?: string[];
  readonly ou?: string;
}

/** What a certificate is for. */
export type CertUsage = 'ca' | 'server' | 'client' | 'server-client';

/** A certificate request. */
export interface CertSpec {
  readonly subject: Subject;
  readonly usage: CertUsage;
  /** DNS names and IP addresses. */
  readonly sans?: string[];
  /** Validity in seconds from `now`. */
  readonly validitySeconds: number;
}

/** A key pair and certificate, both PEM. */
export interface KeyAndCert {
  readonly cert: string;
  readonly key: string;
}

function name(s: Subject): Buffer {
  const rdn = (type: string, value: string) => set(seq(oid(type), utf8(value)));
  return seq(...(s.o ?? []).map((o) => rdn(OID.o, o)), ...(s.ou ? [rdn(OID.ou, s.ou)] : []), rdn(OID.cn, s.cn));
}

// The uncompressed P-256 point: the last 65 bytes of the key's SPKI DER (its BIT STRING's content after the
// unused-bits byte), cheaper than a JWK export.
function publicKeyBits(spki: Buffer): Buffer {
  if (spki.length !== 91) throw new Error('not a P-256 public key');
  return spki.subarray(-65);
}

// Subject key id: SHA-1 of the public key bits (RFC 5280 4.2.1.2, method 1, as openssl computes it).
const keyId = (spki: Buffer) => createHash('sha1').update(publicKeyBits(spki)).digest();
const spkiOf = (pub: KeyObject) => pub.export({ format: 'der', type: 'spki' });

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function keyUsage(usage: CertUsage): Buffer {
  // Bits: digitalSignature (0), keyEncipherment (2), keyCertSign (5), cRLSign (6); DER drops trailing zero bits.
  if (usage === 'ca') return bits(Buffer.from([0x86]), 1); // 1000 0110: bits 0, 5, 6
  return bits(Buffer.from([0xa0]), 5); // 1010 0000: bits 0, 2
}

function subjectAltNames(sans: string[]): Buffer {
  return seq(
    ...sans.map((s) => {
      const family = isIP(s);
      if (family === 4) return tlv(0x87, Buffer.from(s.split('.').map(Number)));
      if (family === 6) return tlv(0x87, ipv6Bytes(s));
      return tlv(0x82, Buffer.from(s, 'ascii'));
    }),
  );
}

function ipv6Bytes(s: string): Buffer {
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

const pem = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

/** PEM of a private key (PKCS#8, which Go's crypto/tls and client-go's keyutil read). */
export const privateKeyPem = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }).toString();
/** PEM of a public key (PKIX, the format kube-apiserver's `--service-account-key-file` expects). */
export const publicKeyPem = (k: KeyObject) => k.export({ format: 'pem', type: 'spki' }).toString();

/** An issuer's key, subject and key id, parsed from its PEM. */
interface ParsedIssuer {
  readonly key: KeyObject;
  readonly subject: Buffer;
  readonly keyId: Buffer;
}

// A plane's pass signs up to seven certificates with the same CA, and parsing its PEM key and certificate each time
// was a third of the controller's CPU when a thousand planes were minted at once (BENCHMARKS.md). A few recent
// issuers are kept parsed: bounded, and only what the pass holds in memory anyway.
const ISSUERS_KEPT = 16;
const issuers = new Map<string, ParsedIssuer>();

function keepIssuer(id: string, p: ParsedIssuer): void {
  issuers.delete(id); // most recent last
  if (issuers.size >= ISSUERS_KEPT) issuers.delete(issuers.keys().next().value!);
  issuers.set(id, p);
}

function parsedIssuer(issuer: KeyAndCert): ParsedIssuer {
  const id = issuer.cert + issuer.key;
  const p = issuers.get(id) ?? {
    key: createPrivateKey(issuer.key),
    subject: Buffer.from(derOfSubject(issuer.cert)),
    keyId: keyId(spkiOf(new X509Certificate(issuer.cert).publicKey)),
  };
  keepIssuer(id, p);
  return p;
}

/**
 * Issues a certificate for a new key. `issuer` signs it; without one it is self-signed (a CA).
 * Valid from one hour before `now` (clock skew between hosting nodes) for `validitySeconds`.
 */
export function issue(spec: CertSpec, now: Date, issuer?: KeyAndCert): KeyAndCert {
  const { privateKey, publicKey } = newKey();
  const spki = spkiOf(publicKey);
  const ski = keyId(spki);
  const parsed = issuer && parsedIssuer(issuer);
  const signer = parsed ? parsed.key : privateKey;
  const issuerName = parsed ? parsed.subject : name(spec.subject);
  const serial = randomBytes(16);
  serial[0] &= 0x7f;
  serial[0] |= 0x01; // positive and exactly 16 bytes
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(now.getTime() + spec.validitySeconds * 1000);
  const exts = [
    extension(OID.keyUsage, true, keyUsage(spec.usage)),
    extension(OID.basicConstraints, true, spec.usage === 'ca' ? seq(bool(true)) : seq()),
    extension(OID.subjectKeyId, false, octets(ski)),
  ];
  if (spec.usage !== 'ca') {
    const eku = {
      server: [OID.serverAuth],
      client: [OID.clientAuth],
      'server-client': [OID.serverAuth, OID.clientAuth],
    };
    exts.push(extension(OID.extKeyUsage, false, seq(...eku[spec.usage].map(oid))));
    exts.push(extension(OID.authorityKeyId, false, seq(tlv(0x80, parsed ? parsed.keyId : ski))));
  }
  if (spec.sans?.length) exts.push(extension(OID.subjectAltName, false, subjectAltNames(spec.sans)));
  const algorithm = seq(oid(OID.ecdsaSha256));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    algorithm,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    name(spec.subject),
    spki,
    explicit(3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const out = { cert: pem('CERTIFICATE', seq(tbs, algorithm, bits(signature))), key: privateKeyPem(privateKey) };
  // A new CA signs its plane's leaves next, in the same pass: kept as it is, not parsed back from its PEM.
  if (spec.usage === 'ca') keepIssuer(out.cert + out.key, { key: privateKey, subject: name(spec.subject), keyId: ski });
  return out;
}

/** A new service-account signing key pair (PEM private and public key). */
export function newServiceAccountKey(): { key: string; pub: string } {
  const { privateKey, publicKey } = newKey();
  return { key: privateKeyPem(privateKey), pub: publicKeyPem(publicKey) };
}

// The issuer field must be byte-identical to the issuer's subject; read it from the DER instead of re-encoding.
function derOfSubject(certPem: string): Uint8Array {
  const der = new X509Certificate(certPem).raw;
  const read = (at: number) => {
    let l = der[at + 1];
    let hdr = 2;
    if (l & 0x80) {
      const n = l & 0x7f;
      l = 0;
      for (let i = 0; i < n; i++) l = (l << 8) | der[at + 2 + i];
      hdr += n;
    }
    return { start: at, body: at + hdr, end: at + hdr + l };
  };
  const tbs = read(read(0).body);
  let at = tbs.body;
  const fields: { start: number; end: number }[] = [];
  while (at < tbs.end && fields.length < 6) {
    const f = read(at);
    fields.push(f);
    at = f.end;
  }
  // [0] version, serial, signature algorithm, issuer, validity, subject
  const subject = fields[5];
  return der.subarray(subject.start, subject.end);
}

// ---- Inspection -------------------------------------------------------------------------------------------------

/** What the controller checks about an existing certificate before deciding to keep it. */
export interface CertCheck {
  /** The CA that must have signed it (omit for a CA itself). */
  readonly ca?: string;
  /** SANs it must carry (all of them). */
  readonly sans?: string[];
  /** Its private key, which must match the certificate. */
  readonly key?: string;
  /** Renew when less than this many seconds of validity remain. */
  readonly renewBeforeSeconds: number;
  /** The subject it must carry (common name and exactly these organizations, i.e. Kubernetes groups). */
  readonly subject?: Subject;
}

/** Why a certificate must be (re)issued, or undefined when it is fine. */
export function certProblem(certPem: string | undefined, check: CertCheck, now: Date): string | undefined {
  if (!certPem) return 'missing';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return 'not a PEM certificate';
  }
  if (check.ca) {
    try {
      const ca = new X509Certificate(check.ca);
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by the current CA';
    } catch {
      return 'CA unreadable';
    }
  }
  if (check.key !== undefined) {
    try {
      if (!cert.checkPrivateKey(createPrivateKey(check.key))) return 'private key does not match';
    } catch {
      return 'private key unreadable';
    }
  }
  if (check.subject) {
    const want = [...(check.subject.o ?? []).map((o) => `O=${o}`), `CN=${check.subject.cn}`].sort().join('\n');
    const have = cert.subject
      .split('\n')
      .filter((l) => /^(O|CN)=/.test(l))
      .sort()
      .join('\n');
    if (have !== want) return `subject is ${cert.subject.replace(/\n/g, ', ')}`;
  }
  const remaining = (Date.parse(cert.validTo) - now.getTime()) / 1000;
  if (remaining < check.renewBeforeSeconds) return `expires ${new Date(Date.parse(cert.validTo)).toISOString()}`;
  if (check.sans) {
    const have = new Set(
      (cert.subjectAltName ?? '').split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '').toLowerCase()),
    );
    const missing = check.sans.filter((s) => !have.has(s.toLowerCase()));
    if (missing.length) return `lacks SANs ${missing.join(', ')}`;
  }
  return undefined;
}

/** True when `pub` (PEM) is the public half of `key` (PEM). */
export function publicKeyMatches(key: string | undefined, pub: string | undefined): boolean {
  if (!key || !pub) return false;
  try {
    return publicKeyPem(createPublicKey(createPrivateKey(key))) === publicKeyPem(createPublicKey(pub));
  } catch {
    return false;
  }
}
