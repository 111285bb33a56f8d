/** What a view of the dashboard is rendered with (main.ts routes to the views). */
import type { Me } from './api.ts';

export interface ViewContext {
  readonly me: Me;
  readonly main: HTMLElement;
  /** The route after the view's name (e.g. a drill id). */
  readonly rest: string;
}
