/** Quiet hours: a daily window, in the receiver's time zone, in which only urgent alerts go out. */
import { severityRank, type Alert } from './alert.ts';
import type { QuietHoursConfig } from './config.ts';

function minutesOf(clock: string): number {
  const [hours, minutes] = clock.split(':').map(Number);
  return hours! * 60 + minutes!;
}

/** Minutes since local midnight in `timeZone` at wall time `wallMs`. */
export function localMinutes(wallMs: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(wallMs));
  const hour = Number(parts.find((part) => part.type === 'hour')?.value ?? 0);
  const minute = Number(parts.find((part) => part.type === 'minute')?.value ?? 0);
  return hour * 60 + minute;
}

export function inQuietHours(quiet: QuietHoursConfig, wallMs: number): boolean {
  const now = localMinutes(wallMs, quiet.timeZone);
  const from = minutesOf(quiet.from);
  const to = minutesOf(quiet.to);
  if (from === to) return false;
  return from < to ? now >= from && now < to : now >= from || now < to;
}

/** Whether quiet hours hold this alert back now (it goes out once they end). */
export function heldByQuietHours(quiet: QuietHoursConfig | undefined, alert: Alert, wallMs: number): boolean {
  if (quiet === undefined || !inQuietHours(quiet, wallMs)) return false;
  return severityRank(alert.severity) < severityRank(quiet.minSeverity);
}
