/**
 * Event histories to and from proto JSON (the form `temporal workflow show --output json` writes), as the SDK's
 * `historyToJSON` / `historyFromJSON` (@temporalio/common/lib/proto-utils) do, but with the protobufjs that built
 * @temporalio/proto's types. This install holds two copies of protobufjs 8 (under @temporalio/common and under
 * @temporalio/proto, since the top-level one is grpc's 7.x), and the SDK's helpers then fail with "type must be a
 * Type": the protojson of one copy does not recognise the other's types.
 */
import { createRequire } from 'node:module';
import type { temporal } from '@temporalio/proto';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

type History = temporal.api.history.v1.IHistory;

/** One run of a job as test/fixtures/record-histories.ts writes it and test/unit/replay.test.ts reads it. */
export interface RecordedHistory {
  /** Replay needs it (a history does not say it, and a workflow may use it, e.g. for its children's ids). */
  workflowId: string;
  workflowType: string;
  scenario: string;
  /** The code that ran it: a commit, or a label given with --source. */
  source: string;
  /** Proto JSON, see {@link historyToJSONObject}. */
  history: { events: unknown[] };
}

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

// protobufjs as @temporalio/proto resolves it: the copy its types were made with.
const protojson = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

/** A history (as `fetchHistory()` returns it) as proto JSON: `{ events: [...] }` with enum names and base64 bytes. */
export function historyToJSONObject(history: History): { events: unknown[] } {
  return protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)) as {
    events: unknown[];
  };
}

/** A history from proto JSON written by {@link historyToJSONObject}; fields it does not know are ignored. */
export function historyFromJSONObject(json: { events: unknown[] }): History {
  const history = protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History | null;
  if (!history?.events?.length) throw new TypeError('Invalid history: no events');
  return history;
}
