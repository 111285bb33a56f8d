/** Who makes a request: the account behind its token, with its role. */
import type { Role } from '../service/auth/roles.ts';

export interface Principal {
  readonly username: string;
  readonly role: Role;
  readonly tokenId: string | null;
  readonly anonymous?: true;
}

/** The actor journaled for a principal's actions. */
export function actorOf(principal: Principal): string {
  return `user:${principal.username}`;
}
