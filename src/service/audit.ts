/**
 * Audit: verifying the journal's hash chain and exporting a signed range of it for an auditor.
 * The export carries the hash of the entry before the range (its anchor), every entry in it and an
 * Ed25519 signature over the whole document, so an auditor can check both that the service signed
 * it and that no entry inside was changed, removed or reordered.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Journal, JournalEntry } from '../ports/index.ts';
import { chainHash, GENESIS_HASH, verifyChain, type ChainVerdict } from '../journal/chain.ts';

export const EXPORT_FORMAT = 'tomaranai-audit-export/1';

export interface AuditExport {
  readonly format: typeof EXPORT_FORMAT;
  readonly exportedAtMs: number;
  readonly exportedBy: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  /** The hash the first exported entry links to. */
  readonly anchorHash: string;
  /** The verdict on the whole journal when the export was made. */
  readonly chain: ChainVerdict;
  readonly entries: readonly JournalEntry[];
  readonly publicKeyPem: string;
  readonly signature: string;
}

export interface AuditSigner {
  readonly publicKeyPem: string;
  sign(payload: string): string;
}

export function createSigner(privateKeyPem: string): AuditSigner {
  const privateKey: KeyObject = createPrivateKey(privateKeyPem);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { publicKeyPem, sign: (payload) => sign(null, Buffer.from(payload), privateKey).toString('base64') };
}

export function newSigningKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function verifyJournal(journal: Journal): ChainVerdict {
  return verifyChain(journal.entries());
}

function unsignedPayload(document: Omit<AuditExport, 'signature'>): string {
  return JSON.stringify(document);
}

export function exportAudit(options: { journal: Journal; signer: AuditSigner; fromMs: number; toMs: number; actor: string; nowMs: number; limit?: number }): AuditExport {
  const all = options.journal.entries();
  const chain = verifyChain(all);
  const limit = options.limit ?? 1_000_000;
  const entries: JournalEntry[] = [];
  let anchorHash = GENESIS_HASH;
  for (const entry of all) {
    if (entry.atMs < options.fromMs) {
      anchorHash = entry.hash;
      continue;
    }
    if (entry.atMs > options.toMs || entries.length >= limit) break;
    entries.push(entry);
  }
  const document: Omit<AuditExport, 'signature'> = {
    format: EXPORT_FORMAT,
    exportedAtMs: options.nowMs,
    exportedBy: options.actor,
    fromMs: options.fromMs,
    toMs: options.toMs,
    firstSeq: entries[0]?.seq ?? null,
    lastSeq: entries.at(-1)?.seq ?? null,
    anchorHash: entries.length > 0 ? entries[0]!.previousHash : anchorHash,
    chain,
    entries,
    publicKeyPem: options.signer.publicKeyPem,
  };
  return { ...document, signature: options.signer.sign(unsignedPayload(document)) };
}

/** What an auditor runs on an export: the signature, then the chain inside the range. */
export function verifyExport(document: AuditExport, trustedPublicKeyPem?: string): { ok: boolean; reason: string | null } {
  const { signature, ...rest } = document;
  const key = createPublicKey(trustedPublicKeyPem ?? document.publicKeyPem);
  if (!verify(null, Buffer.from(unsignedPayload(rest)), key, Buffer.from(signature, 'base64'))) return { ok: false, reason: 'the signature does not match the document' };
  let previousHash = document.anchorHash;
  let expectedSeq = document.firstSeq ?? 0;
  for (const entry of document.entries) {
    if (entry.seq !== expectedSeq) return { ok: false, reason: `entry ${entry.seq}: expected ${expectedSeq} (removed or reordered)` };
    if (entry.previousHash !== previousHash || chainHash(previousHash, entry.seq, entry) !== entry.hash) return { ok: false, reason: `entry ${entry.seq}: hash does not hold` };
    previousHash = entry.hash;
    expectedSeq++;
  }
  return { ok: true, reason: null };
}
