import type { EventHooks, EventPayload, RuleEvent, RuleSpec } from '../store/event-model.js';
import type { Route } from '../store/event-repo.js';
import { matchesGlob } from './path-glob.js';

// Which rules want an event: pure functions of the rules and the payload, so they are tested without a server.

/** The facts a rule filters on. */
export type Filterable = Pick<EventPayload, 'user' | 'groups' | 'path' | 'toPath' | 'size' | 'result'>;

export function ruleMatches(rule: RuleSpec, event: RuleEvent, f: Filterable): boolean {
  if (!rule.enabled || !rule.events.includes(event)) return false;
  if (rule.users.length > 0 && (f.user === null || !rule.users.includes(f.user))) return false;
  if (rule.groups.length > 0 && !f.groups.some((g) => rule.groups.includes(g))) return false;
  if (rule.paths.length > 0) {
    const paths = [f.path, f.toPath].filter((p): p is string => p !== null);
    if (!rule.paths.some((glob) => paths.some((p) => matchesGlob(glob, p)))) return false;
  }
  // A size filter needs a size: events without one (a login) never pass it.
  if (rule.minSize !== null && (f.size === null || f.size < rule.minSize)) return false;
  if (rule.maxSize !== null && (f.size === null || f.size > rule.maxSize)) return false;
  if (rule.results.length > 0 && !rule.results.includes(f.result)) return false;
  return true;
}

/** One route per action of every matching rule (the first rule naming an action is the one recorded). */
export function routesFor(hooks: EventHooks, event: RuleEvent, f: Filterable): Route[] {
  const routes: Route[] = [];
  const seen = new Set<string>();
  for (const rule of Object.values(hooks.rules)) {
    if (!ruleMatches(rule, event, f)) continue;
    for (const action of rule.actions) {
      if (seen.has(action)) continue;
      seen.add(action);
      routes.push({ action, rule: rule.name });
    }
  }
  return routes;
}

/** Rules whose events include `event`, ignoring size (not known yet): does anything want to look at this upload? */
export function mayMatch(hooks: EventHooks, event: RuleEvent, f: Omit<Filterable, 'size'>): RuleSpec[] {
  return Object.values(hooks.rules).filter((r) => ruleMatches({ ...r, minSize: null, maxSize: null }, event, { ...f, size: null }));
}
