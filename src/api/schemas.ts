/** Schemas shared by several resources (each resource declares its own next to its routes). */
import { z } from 'zod';

export const NAME = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9._@:#-]*$/, 'letters, digits and . _ @ : # - only');
export const REASON = z.string().trim().min(3, 'say why, in a few words').max(2000);
export const ReasonBody = z.object({ reason: REASON }).strict();
export const Ok = z.object({ ok: z.literal(true) });

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string(),
    transient: z.boolean(),
    issues: z.array(z.object({ path: z.string(), code: z.string(), message: z.string() })).optional(),
  }),
});

export { JournalEntrySchema } from '../dto/index.ts';
