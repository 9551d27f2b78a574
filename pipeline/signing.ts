import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { UsageError } from "../lib/errors.ts";
import { makeFolderFor, outputFiles } from "../lib/user-paths.ts";
import { log } from "../lib/log.ts";
import { formatPublicKey, formatSecretKey, generateKey, isEncrypted, parseSecretKey, parseSignature, signData, signerId, type SecretKey } from "../lib/minisign.ts";
import type { Manifest } from "../wire/manifest.ts";
import type { StoreClient } from "../store/client/client.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { PublishFailed } from "./errors.ts";

/**
 * Signing keys and signed manifests, in minisign's format (lib/minisign.ts).
 *
 * A secret key is encrypted by default, as `minisign -G` makes it: its
 * password comes from OOO_SIGNING_KEY_PASSWORD (CI's secret store), else it
 * is asked on the terminal, never from a flag. `--unencrypted` makes a key
 * without one (`minisign -G -W`), for a CI whose secret store already keeps
 * the key file itself; either way the file is 0600.
 */
export const PASSWORD_ENV = "OOO_SIGNING_KEY_PASSWORD";

/** A password typed on the terminal without echo. */
async function ask(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let typed = "";
  try {
    for await (const chunk of stdin as AsyncIterable<Buffer>) {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return typed;
        if (ch === "\u0003") throw new UsageError("interrupted");
        if (ch === "\u007f") typed = typed.slice(0, -1);
        else typed += ch;
      }
    }
    return typed;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\n");
  }
}

async function password(what: string, confirm: boolean): Promise<string> {
  const given = process.env[PASSWORD_ENV];
  if (given === "") throw new UsageError(`${PASSWORD_ENV} is set but empty: ${what} needs a password`, { hint: "Use --unencrypted for a key without a password." });
  if (given !== undefined) return given;
  if (!process.stdin.isTTY)
    throw new UsageError(`${what} needs a password and there is no terminal to ask it on`, { hint: `Set ${PASSWORD_ENV}.` });
  const first = await ask(`Password for ${what}: `);
  if (confirm && (await ask("Password again: ")) !== first) throw new UsageError("the two passwords differ");
  if (!first) throw new UsageError("an empty password", { hint: "Use --unencrypted for a key without a password." });
  return first;
}

/** `ooo key generate NAME`: NAME.key (0600) and NAME.pub; an existing key is never overwritten. */
export async function generateKeyFiles(name: string, options: { unencrypted?: boolean } = {}) {
  const files = { secret: `${name}.key`, public: `${name}.pub` };
  for (const f of Object.values(files)) if (existsSync(f)) throw new UsageError(`${f} exists: ooo never overwrites a key`, { hint: "Choose another NAME, or remove the old pair first." });
  outputFiles([files.secret, files.public], "NAME", { force: true });
  const key = generateKey();
  const secret = await formatSecretKey(key, options.unencrypted ? undefined : await password(files.secret, true));
  makeFolderFor(files.secret);
  const fd = openSync(files.secret, "wx", 0o600);
  try {
    writeSync(fd, secret);
  } finally {
    closeSync(fd);
  }
  writeFileSync(files.public, formatPublicKey(key), { flag: "wx" });
  return { ...files, id: key.id };
}

export async function loadSigningKey(file: string): Promise<SecretKey> {
  if (!existsSync(file)) throw new UsageError(`no signing key ${file}`, { hint: "`ooo key generate NAME` makes NAME.key and NAME.pub." });
  if (statSync(file).mode & 0o077) log.warn(`${file} can be read by others than its owner: a secret key should be 0600`);
  const text = readFileSync(file, "utf8");
  return parseSecretKey(text, isEncrypted(text, file) ? await password(file, false) : undefined, file);
}

/** The signature's trusted comment: minisign's own fields, and the image it signs (minisign -V prints it). */
const trustedComment = (m: Manifest) => `timestamp:${Math.floor(Date.now() / 1000)}\tfile:${m.name}.manifest.json\thashed\timage:${m.name}@${m.digest}`;

/**
 * Sign the image's stored manifest with `key`: the one stored must be the
 * build's own (a rebuild of the same digest has other timings: its manifest
 * replaces the stored one first). An image already signed by this key is
 * left as it is. Returns the key id.
 */
export async function signImage(client: StoreClient, image: GlanceImage, text: string, manifest: Manifest, key: SecretKey): Promise<string> {
  if (!image.ooo_manifest) throw new PublishFailed(`image ${image.id} has no manifest to sign (a plain Glance keeps none)`);
  let current = image;
  if ((await client.getManifestText(image.id)) !== text) current = await client.putManifest(image.id, text);
  const existing = current.ooo_manifest_signature ? await client.getManifestSignature(image.id) : undefined;
  if (existing !== undefined && signerId(parseSignature(existing)) === key.id) return key.id;
  await log.step(`sign ${manifest.name}'s manifest (key ID ${key.id})`, () => client.putManifestSignature(image.id, signData(key, Buffer.from(text), trustedComment(manifest))));
  return key.id;
}
