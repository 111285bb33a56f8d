/**
 * What the recovery loop asks of the substrate, as data: decide() returns these, the executor
 * carries them out. An action's key names what it acts on, so that one thing is never acted on
 * twice at once (the work queue holds keys, not actions).
 */
import type { InstanceRole } from '../ports/index.ts';
import type { WorkKey } from './work-queue.ts';

export type Action =
  | { readonly type: 'fenceHost'; readonly host: string; readonly reason: string }
  | {
      readonly type: 'startVm';
      readonly vm: string;
      readonly host: string;
      readonly role: InstanceRole;
      readonly datastore: string;
      readonly reason: string;
      readonly coldRestart: boolean;
      /** Dependencies it starts without: they will not come (shed, quarantined, unrecoverable) or did not in time. */
      readonly withoutDependencies?: readonly { readonly service: string; readonly reason: string }[];
    }
  | {
      readonly type: 'stopVm';
      readonly vm: string;
      readonly host: string;
      readonly instanceId: string;
      readonly reason: string;
      readonly shed: boolean;
      /** Stopped for failing its health check: counted towards a crash loop (health-history.ts). */
      readonly sick?: true;
    }
  | { readonly type: 'promoteSecondary'; readonly vm: string; readonly host: string; readonly instanceId: string; readonly reason: string };

export function actionKey(action: Action): WorkKey {
  switch (action.type) {
    case 'fenceHost':
      return `fence:${action.host}`;
    case 'startVm':
      return `start:${action.vm}:${action.role}`;
    case 'stopVm':
      return `stop:${action.instanceId}`;
    case 'promoteSecondary':
      return `promote:${action.vm}`;
  }
}
