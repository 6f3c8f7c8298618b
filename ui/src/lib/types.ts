// The types that cross from the engine, generated from the Rust types by ts-rs
// (ui/src/lib/generated, `cargo test -p syncmon-core --test bindings`). Never written twice:
// this file only re-exports them and derives helpers from them. `Results`, the method → result
// map, is generated from the table of methods in crates/syncmon-core/src/api/mod.rs.
import type { Request, Results, Event, StreamNotice } from './generated';

export type * from './generated';

/** Every method name of the RPC surface. */
export type Method = Request['method'];

/** The params of one method, straight from the generated `Request` union. */
export type ParamsOf<M extends Method> = Extract<Request, { method: M }>['params'];

export type ResultOf<M extends Method> = M extends keyof Results ? Results[M] : never;

/** What arrives on the event channel: an engine event or, on HTTP, a stream notice. */
export type StreamMessage = Event | StreamNotice;

export type EventType = Event['type'];

/** Compile-time check that `Results` names every method of the generated `Request`. */
export type AllMethodsHaveResults = Results extends Record<Method, unknown> ? true : never;
