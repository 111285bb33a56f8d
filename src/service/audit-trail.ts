/**
 * Audit that does not trust the database alone. Two things live outside it, in files only the
 * service's user may read (mode 0600):
 *
 * - the Ed25519 signing key of audit exports and checkpoints. It used to sit in the same database
 *   as the journal, so whoever could rewrite the journal could also re-sign a forged export;
 * - signed checkpoints of the chain head (sequence number and hash), appended as JSON lines every
 *   CHECKPOINT_EVERY entries and at shutdown. Deleting the newest rows, or editing a row and
 *   recomputing every later hash, leaves a chain that verifies on its own; against a checkpoint it
 *   does not: the journal is shorter than a signed head, or a signed head's hash is no longer there.
 *
 * The files can be shipped off the host (a log shipper, WORM storage); `audit verify --checkpoints`
 * reads them back.
 */
import { appendFileSync, chmodSync, closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { TomaranaiError } from '../errors/index.ts';
import type { Journal, JournalEntry } from '../ports/index.ts';
import { createSigner, newSigningKeyPem, type AuditSigner } from './audit.ts';
import { createPublicKey, randomUUID, verify } from 'node:crypto';

/** Entries between two checkpoints, at most; and a quiet journal's head is signed at least this often. */
export const CHECKPOINT_EVERY = 100;
export const CHECKPOINT_INTERVAL_MS = 10_000;
const OWNER_ONLY = 0o600;

/**
 * The signing key from its file, created (0600) on first use. A key file that others may read is
 * refused: whoever reads it can sign forged exports.
 */
export function loadSigningKey(path: string): AuditSigner {
  if (!existsSync(path)) createKeyFile(path, newSigningKeyPem());
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new TomaranaiError('TMR_AUDIT_KEY_MODE', `the audit signing key ${path} may be read by others (mode ${mode.toString(8)})`, `chmod 600 ${path}: whoever reads it can sign a forged audit export`);
  }
  try {
    return createSigner(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TomaranaiError('TMR_AUDIT_KEY_MODE', `the audit signing key ${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`, 'restore the key file from its backup, or move it away to start a new key (older exports keep verifying with the old public key)');
  }
}

/**
 * Writes a new key file (0600), exclusively: when two instances start at once on one host, the one
 * that loses the race reads the winner's key instead.
 */
function createKeyFile(path: string, pem: string): void {
  // Written whole under a temporary name, then linked into place: nobody reads a half-written key,
  // and link() fails if the name exists, so the first instance's key wins.
  const temporary = `${path}.${randomUUID()}.tmp`;
  const fd = openSync(temporary, 'wx', OWNER_ONLY);
  try {
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
}

export interface Checkpoint {
  readonly seq: number;
  readonly hash: string;
  readonly atMs: number;
  readonly signature: string;
}

function payload(checkpoint: Omit<Checkpoint, 'signature'>): string {
  return `tomaranai-checkpoint/1 ${checkpoint.seq} ${checkpoint.hash} ${checkpoint.atMs}`;
}

/** Appends signed checkpoints of the chain head to a file (0600) as the journal grows. */
export class CheckpointWriter {
  private lastSeq = 0;
  private readonly detach: (() => void) | null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly signer: AuditSigner,
    private readonly journal: Journal & { onAppend?: (listener: (entry: JournalEntry) => void) => () => void },
    intervalMs: number = CHECKPOINT_INTERVAL_MS,
  ) {
    if (!existsSync(path)) closeSync(openSync(path, 'a', OWNER_ONLY));
    chmodSync(path, OWNER_ONLY);
    this.lastSeq = readCheckpoints(path).at(-1)?.seq ?? 0;
    this.detach = journal.onAppend?.((entry) => {
      if (entry.seq - this.lastSeq >= CHECKPOINT_EVERY) this.write(entry);
    }) ?? null;
    // A journal that grows slowly is signed every few seconds all the same: a kill -9 leaves at most that much unsigned.
    this.timer = setInterval(() => this.write(this.head()), intervalMs);
    this.timer.unref();
  }

  private head(): JournalEntry | undefined {
    return this.journal.length === 0 ? undefined : this.journal.entries(this.journal.length, 1)[0];
  }

  /** Writes a checkpoint of `entry` (the head) now, if it is newer than the last one. */
  write(entry: JournalEntry | undefined): void {
    if (entry === undefined || entry.seq <= this.lastSeq) return;
    const unsigned = { seq: entry.seq, hash: entry.hash, atMs: entry.atMs };
    const line = JSON.stringify({ ...unsigned, signature: this.signer.sign(payload(unsigned)) });
    appendFileSync(this.path, `${line}\n`, { mode: OWNER_ONLY });
    this.lastSeq = entry.seq;
  }

  /** Signs the head one last time (graceful shutdown) and stops. */
  close(): void {
    clearInterval(this.timer);
    this.write(this.head());
    this.detach?.();
  }
}

export function readCheckpoints(path: string): Checkpoint[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Checkpoint);
}

export interface CheckpointVerdict {
  readonly ok: boolean;
  readonly checked: number;
  /** The first checkpoint the journal contradicts, and how. */
  readonly problem: string | null;
}

/**
 * Holds the journal to its signed checkpoints: each one's signature (by the trusted key), and the
 * journal still holding an entry of that sequence number with that hash.
 */
export function verifyCheckpoints(journal: Journal, checkpoints: readonly Checkpoint[], publicKeyPem: string): CheckpointVerdict {
  const key = createPublicKey(publicKeyPem);
  let checked = 0;
  for (const checkpoint of checkpoints) {
    if (!verify(null, Buffer.from(payload(checkpoint)), key, Buffer.from(checkpoint.signature, 'base64'))) {
      return { ok: false, checked, problem: `checkpoint at entry ${checkpoint.seq}: the signature does not match (the checkpoint file was edited, or another key signed it)` };
    }
    if (checkpoint.seq > journal.length) {
      return { ok: false, checked, problem: `the journal ends at entry ${journal.length}, but entry ${checkpoint.seq} was signed at ${new Date(checkpoint.atMs).toISOString()}: entries were removed from its end` };
    }
    const entry = journal.entries(checkpoint.seq, 1)[0];
    if (entry === undefined || entry.hash !== checkpoint.hash) {
      return { ok: false, checked, problem: `entry ${checkpoint.seq} no longer has the hash signed at ${new Date(checkpoint.atMs).toISOString()}: the journal was rewritten up to it` };
    }
    checked++;
  }
  return { ok: true, checked, problem: null };
}

/** Where a database's audit key and checkpoints live: beside a SQLite file, or named by the operator. */
export interface AuditFiles {
  /** null: an in-memory database (demo, tests): a key for this process only, no checkpoints. */
  readonly keyFile: string | null;
  readonly checkpointFile: string | null;
  /** The audit forwarder's cursor (the last entry a syslog server took); null: kept in memory only. */
  readonly forwardCursorFile: string | null;
}

export function auditFilesFor(db: string, overrides: { keyFile?: string; checkpointFile?: string } = {}): AuditFiles {
  const sqlite = db.startsWith('sqlite:') ? db.slice('sqlite:'.length) : db === ':memory:' ? ':memory:' : null;
  if (sqlite === ':memory:') return { keyFile: overrides.keyFile ?? null, checkpointFile: overrides.checkpointFile ?? null, forwardCursorFile: null };
  const base = sqlite ?? 'tomaranai';
  return { keyFile: overrides.keyFile ?? `${base}.audit-key`, checkpointFile: overrides.checkpointFile ?? `${base}.checkpoints.jsonl`, forwardCursorFile: `${base}.audit-forward.cursor` };
}

/** The database's old key setting (before keys left the database); moved into the key file once. */
const LEGACY_KEY_SETTING = 'audit.signing-key';

/**
 * The signer for a database: its key file (created 0600 on first use). A key an older version kept
 * in the database is moved into the file and deleted from the database, so exports it signed keep
 * verifying and the database no longer holds it.
 */
export async function openAuditSigner(files: AuditFiles, settings: { setting(key: string): Promise<string | null>; deleteSetting(key: string): Promise<void> }): Promise<AuditSigner> {
  const legacy = await settings.setting(LEGACY_KEY_SETTING);
  if (files.keyFile === null) return createSigner(legacy ?? newSigningKeyPem());
  if (legacy !== null && !existsSync(files.keyFile)) createKeyFile(files.keyFile, legacy);
  const signer = loadSigningKey(files.keyFile);
  if (legacy !== null) await settings.deleteSetting(LEGACY_KEY_SETTING);
  return signer;
}
