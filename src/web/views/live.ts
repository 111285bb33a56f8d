/** Live: the incident timeline as it happens, from the event stream (a vendor sees its own systems). */
import { api, streamEvents } from '../api.ts';
import { announce, h } from '../dom.ts';
import { seconds, t, type Key } from '../i18n.ts';
import type { ViewContext } from '../context.ts';
import type { ServiceView, TierView } from '../state.ts';
import { IncidentTimeline, type Step } from '../timeline.ts';

const STEPS_SHOWN = 400;

function clockOf(atMs: number): string {
  const total = Math.floor(atMs / 1000);
  const hours = Math.floor(total / 3600) % 24;
  const minutes = Math.floor(total / 60) % 60;
  const secs = total % 60;
  return `${String(hours).padStart(2, '0')}:${String(minutes).padStart(2, '0')}:${String(secs).padStart(2, '0')}.${String(Math.floor(atMs % 1000 / 100))}`;
}

function stepItem(step: Step): HTMLElement {
  const detail =
    step.kind === 'back' && step.measuredS !== undefined
      ? h('span', { class: step.targetS !== undefined && step.measuredS > step.targetS ? 'bad' : 'ok', 'data-measured-s': step.measuredS }, ` ${seconds(step.measuredS)}${step.targetS !== undefined ? ` / ${t('hospital.target')} ${seconds(step.targetS)}` : ''}`)
      : null;
  return h('li', { 'data-kind': step.kind, 'data-subject': step.subject }, h('span', { class: 't' }, clockOf(step.atMs)), ' ', h('span', { class: `k k-${step.kind}` }, t(`kind.${step.kind}` as Key)), ' ', step.text, detail);
}

export async function renderLive({ me, main }: ViewContext): Promise<() => void> {
  main.appendChild(h('h1', {}, t('live.title')));
  if (me.role.startsWith('vendor:')) main.appendChild(h('p', { class: 'muted' }, t('vendorNote')));
  const status = h('p', { id: 'live-status', role: 'status' }, t('live.connecting'));
  const list = h('ol', { class: 'timeline', id: 'live-timeline', 'aria-label': t('live.title') });
  main.appendChild(status);
  main.appendChild(list);
  const [services, tiers] = await Promise.all([api<{ services: ServiceView[] }>('/services'), api<{ tiers: TierView[] }>('/tiers')]);
  const serviceOfVm = new Map(services.services.flatMap((service) => service.vms.map((vm) => [vm.name, { service: service.name, tier: service.tier }] as const)));
  const vmsOfService = new Map(services.services.map((service) => [service.name, service.vms.map((vm) => vm.name)]));
  const timeline = new IncidentTimeline(serviceOfVm, new Map(tiers.tiers.map((tier) => [tier.name, tier.rtoS])), vmsOfService);
  let wasOpen = false;
  const stop = streamEvents(
    (entry) => {
      for (const step of timeline.add(entry)) {
        list.appendChild(stepItem(step));
        while (list.children.length > STEPS_SHOWN) list.firstElementChild?.remove();
        if (step.kind === 'fault' || step.kind === 'back') announce(`${t(`kind.${step.kind}` as Key)}: ${step.text}`);
      }
      if (wasOpen && !timeline.open) {
        list.appendChild(h('li', { 'data-kind': 'all-back' }, h('span', { class: 'k k-back' }, '✔'), ' ', t('live.allBack')));
        announce(t('live.allBack'));
      }
      wasOpen = timeline.open;
    },
    (state) => {
      status.textContent = state === 'open' ? t('live.waiting') : t('live.connecting');
      status.setAttribute('data-state', state);
    },
  );
  return stop;
}
