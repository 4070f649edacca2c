import type { CommandSpec } from './command-spec.js';

/** RFC 2389: generated from the registry, so it lists exactly what is implemented. */
export const FEAT: CommandSpec = {
  verb: 'FEAT',
  syntax: 'FEAT',
  availability: 'any',
  run(s) {
    const lines = new Set<string>();
    for (const spec of new Set(s.server.commands.values())) {
      const line = typeof spec.feat === 'function' ? spec.feat(s) : spec.feat;
      if (line) lines.add(line);
    }
    return { code: 211, text: ['Features:', ...[...lines].sort(), 'End'] };
  },
};
