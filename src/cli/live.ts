/**
 * Live progress of a drill for people: one line per event that matters (fault, detection,
 * fencing, failover, restart, a VM healthy again with its measured RTO), written to stderr.
 */
import { asEvent, type JournalEntry } from '../ports/index.ts';
import type { Blueprint } from '../model/index.ts';
import { tierOf } from '../model/index.ts';

export interface LivePrinterOptions {
  readonly blueprint: Blueprint;
  readonly write: (line: string) => void;
  readonly color?: boolean;
}

export function createLivePrinter(options: LivePrinterOptions): (entry: JournalEntry) => void {
  const { blueprint, write } = options;
  const color = options.color ?? false;
  const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const vmService = new Map(blueprint.vms.map((vm) => [vm.name, blueprint.services.find((service) => service.name === vm.service)!]));
  let faultAtMs: number | null = null;
  let warmStartedMs: number | null = null;
  const down = new Set<string>();
  const line = (atMs: number, tag: string, text: string) => {
    const time = `${(atMs / 1000).toFixed(1).padStart(8)} s`;
    write(`${paint(90, time)}  ${tag.padEnd(9)} ${text}`);
  };

  return (entry) => {
    const event = asEvent(entry);
    switch (event.type) {
      case 'drill.started': {
        const { data } = event;
        warmStartedMs = entry.atMs;
        write(`drill ${entry.subject} on ${data.blueprint} (${data.substrate === 'qemu' ? `real VMs, ${String(data.accelerator)}` : `twin, seed ${String(data.seed)}`})`);
        return;
      }
      case 'drill.warm':
        line(entry.atMs, paint(32, 'READY'), `${event.data.vms} VMs booted in dependency order in ${((entry.atMs - (warmStartedMs ?? 0)) / 1000).toFixed(0)} s; every continuous VM has a synchronised secondary`);
        return;
      case 'scenario.planned':
        line(entry.atMs, 'SCENARIO', event.data.description);
        return;
      case 'fault.injected':
        faultAtMs ??= entry.atMs;
        line(entry.atMs, paint(31, 'FAULT'), `${event.data.kind} ${entry.subject}`);
        return;
      case 'fault.repaired':
        line(entry.atMs, paint(36, 'REPAIRED'), `${event.data.kind} ${entry.subject}`);
        return;
    }
    if (faultAtMs === null) return;
    switch (event.type) {
      case 'host.status': {
        const { data } = event;
        if (data.to === 'suspect' || data.to === 'fenced') return;
        line(entry.atMs, paint(33, 'DETECT'), `host ${entry.subject} ${data.to}: ${data.reason}`);
        return;
      }
      case 'fence.completed':
        if (event.data.ok === true) line(entry.atMs, paint(35, 'FENCE'), `host ${entry.subject}: ${event.data.detail}`);
        return;
      case 'migrateVm': {
        const { data } = event;
        if (data.ok === true) line(entry.atMs, paint(36, 'MIGRATE'), `${entry.subject}: ${String(data.from)} → ${String(data.to)} live${typeof data.detail === 'string' ? ` (${data.detail})` : ''}`);
        else line(entry.atMs, paint(31, 'REFUSED'), `migrate ${entry.subject}: ${String(data.refused)}`);
        return;
      }
      case 'promoteSecondary': {
        const { data } = event;
        if (data.ok === true) line(entry.atMs, paint(35, 'FAILOVER'), `${entry.subject}: secondary on ${String(data.host)} takes over`);
        else line(entry.atMs, paint(31, 'REFUSED'), `promote ${entry.subject}: ${String(data.refused)}`);
        return;
      }
      case 'startVm': {
        const { data } = event;
        if (data.ok !== true) {
          line(entry.atMs, paint(31, 'REFUSED'), `start ${entry.subject}: ${String(data.refused)}`);
          return;
        }
        if (data.role === 'secondary') line(entry.atMs, 'PROTECT', `${entry.subject}: new secondary on ${String(data.host)}`);
        else line(entry.atMs, paint(34, 'RESTART'), `${entry.subject} on ${data.host} from ${data.datastore} (${data.reason})`);
        return;
      }
      case 'vm.shed':
        line(entry.atMs, paint(33, 'SHED'), `${entry.subject} (${event.data.tier}): ${event.data.reason}`);
        return;
      case 'vm.cold-restart':
        line(entry.atMs, paint(31, 'BOTH LOST'), `${entry.subject}: ${event.data.reason}`);
        return;
      case 'powerOnHost':
        line(entry.atMs, 'POWER ON', `host ${entry.subject} (${event.data.actor})`);
        return;
      case 'vm.instance': {
        const { data } = event;
        const up = data.role === 'primary' && data.state === 'running' && data.healthy === true;
        if (!up && data.role === 'primary' && data.healthy === false && data.state === 'running') down.add(entry.subject);
        if (up && down.has(entry.subject)) {
          down.delete(entry.subject);
          const service = vmService.get(entry.subject);
          if (service === undefined) return;
          const tier = tierOf(blueprint, service);
          const rtoS = (entry.atMs - faultAtMs) / 1000;
          const verdict = rtoS <= tier.rtoS ? paint(32, '✓') : paint(31, '✗');
          line(entry.atMs, paint(32, 'UP'), `${entry.subject} (${tier.name}) healthy again: RTO ${rtoS.toFixed(1)} s, target ${tier.rtoS} s ${verdict}`);
        }
        return;
      }
      case 'vm.removed':
        down.add(entry.subject);
        return;
    }
  };
}
