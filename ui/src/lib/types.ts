// The types that cross from the engine, generated from the Rust structs by ts-rs
// (ui/src/lib/generated, `cargo test -p syncmon-core export_bindings`). Never written twice:
// this file only re-exports them and adds the method → params/result map of docs/api.md.
import type {
  ConnectionView,
  CycleReport,
  EntityDetailResult,
  FailedDiscardResult,
  FailedItem,
  FailedPageResult,
  OverviewResult,
  ReplayReport,
  Request,
  RequestRow,
  SaveConnectionResult,
  SetPausedResult,
  Settings,
  SyncNowResult,
  TestConnectionResult,
  Event,
  StreamNotice,
} from './generated';

export type * from './generated';

/** Every method name of the RPC surface. */
export type Method = Request['method'];

/** The params of one method, straight from the generated `Request` union. */
export type ParamsOf<M extends Method> = Extract<Request, { method: M }>['params'];

/** What each method answers (docs/api.md, "Methods"). */
export interface Results {
  overview: OverviewResult;
  sync_now: SyncNowResult;
  resync: CycleReport;
  set_paused: SetPausedResult;
  reset_checkpoint: Record<string, never>;
  entity_detail: EntityDetailResult;
  requests: RequestRow[];
  failed_page: FailedPageResult;
  failed_item: FailedItem;
  failed_replay: ReplayReport;
  failed_discard: FailedDiscardResult;
  connections: ConnectionView[];
  save_connection: SaveConnectionResult;
  test_connection: TestConnectionResult;
  set_secret: Record<string, never>;
  activity: Event[];
  settings: Settings;
  save_settings: Settings;
}

export type ResultOf<M extends Method> = M extends keyof Results ? Results[M] : never;

/** What arrives on the event channel: an engine event or, on HTTP, a stream notice. */
export type StreamMessage = Event | StreamNotice;

export type EventType = Event['type'];

/** Compile-time check that `Results` names every method of the generated `Request`. */
export type AllMethodsHaveResults = Results extends Record<Method, unknown> ? true : never;
