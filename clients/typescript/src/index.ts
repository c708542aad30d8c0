// arbiter-decisions-client: the Arbiter decision service from TypeScript, over
// Connect (JSON or binary) or gRPC-Web, on anything with fetch (Node 20+,
// browsers, workers and edge functions). See README.md.

export {
  type Action,
  ArbiterClient,
  type ArbiterClientOptions,
  type CallOptions,
  type CheckInput,
  type CheckResult,
  type ConsentInput,
  createTransport,
  type DecideInput,
  type Decision,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  type EventInput,
  type FallbackReason,
  type HeadersProvider,
  isUnavailable,
  type ProfileInput,
  type Protocol,
  type RetryPolicy,
  type Timeouts,
} from "./client.js";
export { doubleValue, fromValue, fromValueMap, type PlainValue, toValue, toValueMap } from "./values.js";
// The generated messages, enums and the service descriptor, for callers that
// need more than the wrapper (e.g. createClient(DecisionService, transport)).
export * from "./gen/arbiter/v1/decision_pb.js";
export * from "./gen/arbiter/v1/value_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";
