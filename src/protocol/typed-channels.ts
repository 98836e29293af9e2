/**
 * Typed channels, shared by server and browser: a channel map (namespace → payload type) given once types
 * every channel string that starts with one of its namespaces. Types only.
 */

/** Namespace → payload type, e.g. `{ logs: LogLine; metrics: { value: number } }`. */
export type ChannelMap = object;

/** The channel strings of a map: a namespace, a channel in it, or a trailing-`*` pattern (`logs:ws1:*`). */
export type ChannelOf<M extends ChannelMap> = {
  [N in keyof M & string]: N | `${N}:${string}`;
}[keyof M & string];

/** The payload type of `channel` under map `M` (a union for a union of channels). */
export type PayloadOf<M extends ChannelMap, C extends string> = C extends `${infer N}:${string}`
  ? N extends keyof M
    ? M[N]
    : never
  : C extends keyof M
    ? M[C]
    : never;
