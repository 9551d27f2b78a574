import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, sign, timingSafeEqual, verify } from "node:crypto";
import { KeyUnusable, SignatureMalformed } from "./errors.ts";

/**
 * minisign's formats (https://jedisct1.github.io/minisign/), with
 * node:crypto's ed25519: key pairs, signing and verification that Debian's
 * `minisign` reads and writes too (lib/minisign.test.ts runs it both ways).
 *
 *   NAME.pub     untrusted comment: minisign public key <ID>
 *                base64("Ed" ‖ key id (8) ‖ ed25519 public key (32))
 *   NAME.key     untrusted comment: minisign encrypted secret key
 *                base64("Ed" ‖ kdf "Sc"|"\0\0" ‖ "B2" ‖ salt (32) ‖ opslimit ‖ memlimit (u64 LE)
 *                       ‖ [key id ‖ seed+public key (64) ‖ BLAKE2b-256 checksum (32)], XORed with scrypt(password) when "Sc")
 *   FILE.minisig untrusted comment: …
 *                base64("ED" ‖ key id ‖ ed25519(BLAKE2b-512(FILE)))
 *                trusted comment: …
 *                base64(ed25519(signature ‖ trusted comment))
 *
 * Signatures are made prehashed ("ED", minisign's default since 0.8);
 * legacy "Ed" signatures of the whole file verify too. Nothing here uses
 * zod: the node agents' takeover links it.
 */
const SIG_ALG = Buffer.from("Ed");
const SIG_ALG_HASHED = Buffer.from("ED");
const KDF_SCRYPT = Buffer.from("Sc");
const KDF_NONE = Buffer.from([0, 0]);
const CHK_ALG = Buffer.from("B2");
/** libsodium's crypto_pwhash_scryptsalsa208sha256 *_SENSITIVE limits, as `minisign -G` uses them: ~1 GiB, a few seconds. */
const OPSLIMIT = 33554432n;
const MEMLIMIT = 1073741824n;
const SECRET_BYTES = 8 + 64 + 32;

export interface PublicKey {
  /** The key id as minisign prints it: 16 upper-case hex digits. */
  id: string;
  keyId: Buffer;
  key: Buffer;
}

export interface SecretKey extends PublicKey {
  /** ed25519 seed (32) ‖ public key (32), libsodium's secret key. */
  secret: Buffer;
}

export interface Signature {
  keyId: Buffer;
  /** Of the file's BLAKE2b-512 ("ED") or of the file itself ("Ed"). */
  hashed: boolean;
  signature: Buffer;
  trustedComment: string;
  globalSignature: Buffer;
  untrustedComment: string;
}

/** minisign prints a key id as the little-endian u64 it is, in hex. */
const idText = (keyId: Buffer) => Buffer.from(keyId).reverse().toString("hex").toUpperCase();
const b64url = (b: Buffer) => b.toString("base64url");
const blake2b256 = (...parts: Buffer[]) => {
  const h = createHash("blake2b256");
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The two lines of a key file (comment, base64), or of a signature's first half. */
function lines(text: string, what: string, fail: (m: string) => Error): string[] {
  const all = text.replace(/\r/g, "").split("\n");
  if (all.length < 2 || !all[0]!.startsWith("untrusted comment:")) throw fail(`${what} does not start with an 'untrusted comment:' line`);
  return all;
}

function decode(b64: string, bytes: number, what: string, fail: (m: string) => Error): Buffer {
  const raw = Buffer.from(b64.trim(), "base64");
  if (raw.length !== bytes || raw.toString("base64").replace(/=+$/, "") !== b64.trim().replace(/=+$/, ""))
    throw fail(`${what} is not ${bytes} bytes of base64`);
  return raw;
}

/** A public key: a NAME.pub file's text, or the base64 line alone (`minisign -P`). */
export function parsePublicKey(text: string, source = "the public key"): PublicKey {
  const fail = (m: string) => new KeyUnusable(source, m);
  const line = text.includes("\n") ? lines(text, source, fail)[1]! : text.trim();
  const raw = decode(line, 42, source, fail);
  if (!raw.subarray(0, 2).equals(SIG_ALG)) throw fail("it is not an Ed25519 minisign key");
  const keyId = raw.subarray(2, 10);
  return { id: idText(keyId), keyId, key: raw.subarray(10) };
}

export function formatPublicKey(k: PublicKey): string {
  return `untrusted comment: minisign public key ${k.id}\n${Buffer.concat([SIG_ALG, k.keyId, k.key]).toString("base64")}\n`;
}

/** libsodium's pickparams: scrypt's N, r, p from opslimit and memlimit. */
function scryptParams(opslimit: bigint, memlimit: bigint) {
  const ops = opslimit < 32768n ? 32768n : opslimit;
  const r = 8n;
  let nLog2 = 1n;
  let p = 1n;
  if (ops < memlimit / 32n) {
    const maxN = ops / (r * 4n);
    while (nLog2 < 63n && 1n << nLog2 <= maxN / 2n) nLog2++;
  } else {
    const maxN = memlimit / (r * 128n);
    while (nLog2 < 63n && 1n << nLog2 <= maxN / 2n) nLog2++;
    let maxrp = ops / 4n / (1n << nLog2);
    if (maxrp > 0x3fffffffn) maxrp = 0x3fffffffn;
    p = maxrp / r;
  }
  return { N: Number(1n << nLog2), r: Number(r), p: Number(p) };
}

async function keystream(password: string, salt: Buffer, opslimit: bigint, memlimit: bigint): Promise<Buffer> {
  const { N, r, p } = scryptParams(opslimit, memlimit);
  const options = { N, r, p, maxmem: 129 * N * r * p + (16 << 20) };
  return new Promise<Buffer>((resolve, reject) => scrypt(password, salt, SECRET_BYTES, options, (e, key) => (e ? reject(e) : resolve(key))));
}

const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]!));

/** Whether a secret key file asks for a password (minisign's default) or not (`minisign -G -W`). */
export function isEncrypted(text: string, source = "the secret key"): boolean {
  const raw = decode(lines(text, source, (m) => new KeyUnusable(source, m))[1]!, 54 + SECRET_BYTES, source, (m) => new KeyUnusable(source, m));
  return raw.subarray(2, 4).equals(KDF_SCRYPT);
}

export async function parseSecretKey(text: string, password: string | undefined, source = "the secret key"): Promise<SecretKey> {
  const fail = (m: string) => new KeyUnusable(source, m);
  const raw = decode(lines(text, source, fail)[1]!, 54 + SECRET_BYTES, source, fail);
  if (!raw.subarray(0, 2).equals(SIG_ALG) || !raw.subarray(4, 6).equals(CHK_ALG)) throw fail("it is not an Ed25519 minisign secret key");
  const kdf = raw.subarray(2, 4);
  let sealed = raw.subarray(54);
  if (kdf.equals(KDF_SCRYPT)) {
    if (password === undefined) throw fail("it is encrypted, and no password was given");
    sealed = xor(sealed, await keystream(password, raw.subarray(6, 38), raw.readBigUInt64LE(38), raw.readBigUInt64LE(46)));
  } else if (!kdf.equals(KDF_NONE)) throw fail("its key derivation is neither scrypt nor none");
  const keyId = sealed.subarray(0, 8);
  const secret = sealed.subarray(8, 72);
  const chk = sealed.subarray(72);
  // minisign -W leaves the checksum of an unencrypted key zero.
  const unchecked = kdf.equals(KDF_NONE) && chk.every((b) => b === 0);
  if (!unchecked && !timingSafeEqual(chk, blake2b256(SIG_ALG, keyId, secret)))
    throw fail(kdf.equals(KDF_SCRYPT) ? "wrong password for that key" : "its checksum does not match");
  return { id: idText(keyId), keyId, key: secret.subarray(32), secret };
}

export async function formatSecretKey(k: SecretKey, password: string | undefined): Promise<string> {
  const salt = password === undefined ? Buffer.alloc(32) : randomBytes(32);
  const limits = Buffer.alloc(16);
  if (password !== undefined) {
    limits.writeBigUInt64LE(OPSLIMIT, 0);
    limits.writeBigUInt64LE(MEMLIMIT, 8);
  }
  let sealed = Buffer.concat([k.keyId, k.secret, blake2b256(SIG_ALG, k.keyId, k.secret)]);
  if (password !== undefined) sealed = xor(sealed, await keystream(password, salt, OPSLIMIT, MEMLIMIT));
  const raw = Buffer.concat([SIG_ALG, password === undefined ? KDF_NONE : KDF_SCRYPT, CHK_ALG, salt, limits, sealed]);
  return `untrusted comment: minisign ${password === undefined ? "unencrypted" : "encrypted"} secret key\n${raw.toString("base64")}\n`;
}

export function generateKey(): SecretKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d!, "base64url");
  const key = Buffer.from(jwk.x!, "base64url");
  const keyId = randomBytes(8);
  return { id: idText(keyId), keyId, key, secret: Buffer.concat([seed, key]) };
}

const privateKeyOf = (k: SecretKey) =>
  createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: b64url(k.secret.subarray(0, 32)), x: b64url(k.key) }, format: "jwk" });
const publicKeyOf = (k: PublicKey) => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(k.key) }, format: "jwk" });
const blake2b512 = (data: Uint8Array) => createHash("blake2b512").update(data).digest();

/** A .minisig for `data`, prehashed as minisign signs by default. */
export function signData(k: SecretKey, data: Uint8Array, trustedComment: string, untrustedComment = "signature from ooo secret key"): string {
  if (/[\r\n]/.test(trustedComment + untrustedComment)) throw new Error("a minisign comment is one line");
  const signature = sign(null, blake2b512(data), privateKeyOf(k));
  const globalSignature = sign(null, Buffer.concat([signature, Buffer.from(trustedComment)]), privateKeyOf(k));
  return (
    `untrusted comment: ${untrustedComment}\n${Buffer.concat([SIG_ALG_HASHED, k.keyId, signature]).toString("base64")}\n` +
    `trusted comment: ${trustedComment}\n${globalSignature.toString("base64")}\n`
  );
}

export function parseSignature(text: string, source = "the signature"): Signature {
  const fail = (m: string) => new SignatureMalformed(source, m);
  const all = lines(text, source, fail);
  if (all.length < 4 || !all[2]!.startsWith("trusted comment: ")) throw fail("its third line is not a 'trusted comment:'");
  const raw = decode(all[1]!, 74, source, fail);
  const alg = raw.subarray(0, 2);
  if (!alg.equals(SIG_ALG) && !alg.equals(SIG_ALG_HASHED)) throw fail("it is not an Ed25519 minisign signature");
  return {
    keyId: raw.subarray(2, 10),
    hashed: alg.equals(SIG_ALG_HASHED),
    signature: raw.subarray(10),
    trustedComment: all[2]!.slice("trusted comment: ".length),
    globalSignature: decode(all[3]!, 64, `${source}'s trusted comment signature`, fail),
    untrustedComment: all[0]!.slice("untrusted comment:".length).trim(),
  };
}

/** The id (as minisign prints it) of the key that made a signature. */
export const signerId = (s: Signature) => idText(s.keyId);

export type Verdict = { ok: true; key: PublicKey } | { ok: false; reason: "unknown-key" | "bad-signature" | "bad-comment"; key?: PublicKey };

/** Check `data` against a signature and the keys trusted: the key ids must match and both signatures verify, as `minisign -V`. */
export function verifyData(data: Uint8Array, s: Signature, keys: PublicKey[]): Verdict {
  const key = keys.find((k) => k.keyId.equals(s.keyId));
  if (!key) return { ok: false, reason: "unknown-key" };
  if (!verify(null, s.hashed ? blake2b512(data) : data, publicKeyOf(key), s.signature)) return { ok: false, reason: "bad-signature", key };
  if (!verify(null, Buffer.concat([s.signature, Buffer.from(s.trustedComment)]), publicKeyOf(key), s.globalSignature))
    return { ok: false, reason: "bad-comment", key };
  return { ok: true, key };
}
