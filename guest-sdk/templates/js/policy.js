// A scaling policy in JavaScript: ARC's formula plus one spare runner per `spareEvery` assigned jobs.
//
// WIT → JS: exported interfaces are exported objects, records are camelCase objects, u64 fields are BigInt,
// option<T> is T | undefined, list<u8> is Uint8Array, and `result::err` is a thrown value.
import { log } from 'gha-autoscaler:policy/logging@0.2.0';

let config = { spareEvery: 0 };

export const lifecycle = {
  info() {
    return { name: '{{name}}', version: '0.1.0', sdkVersion: 'componentize-js-0.23.0' };
  },
  configure(scaleSet, configJson) {
    const parsed = configJson && configJson !== 'null' ? JSON.parse(configJson) : {};
    if (parsed.spareEvery !== undefined && (!Number.isInteger(parsed.spareEvery) || parsed.spareEvery < 0)) {
      throw { tag: 'invalid-config', val: 'spareEvery must be a non-negative integer' };
    }
    config = { spareEvery: parsed.spareEvery ?? 0 };
    log('info', `configured for ${scaleSet.namespace}/${scaleSet.name}`, []);
  },
};

export const scaler = {
  decide(input) {
    const { minRunners, maxRunners } = input.bounds;
    const assigned = input.statistics.assignedJobs;
    const spares = config.spareEvery > 0 ? Math.ceil(assigned / config.spareEvery) : 0;
    const desired = Math.min(minRunners + assigned + spares, maxRunners);
    const previous = input.previous;
    return {
      desiredRunners: desired,
      maxCapacity: maxRunners,
      minRunners,
      // ARC's drain rule: quiet since the last decision, target unchanged, at the floor.
      drain: input.jobEventsSincePrevious === 0 && previous !== undefined &&
        previous.desiredRunners === desired && desired === minRunners,
      requeueAfterMs: undefined,
      reason: `min ${minRunners} + assigned ${assigned} + spares ${spares}`,
      state: new Uint8Array(),
      attributes: [],
    };
  },
};
