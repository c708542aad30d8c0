// ArbiterClient: a thin, typed wrapper over the generated DecisionService
// stubs with the Python client's semantics:
//
// - every call has an overall deadline (`timeouts`, or `timeoutMs` per call)
//   that includes retries; the server sees it too (connect-timeout-ms /
//   grpc-timeout) and answers within it;
// - only UNAVAILABLE (server unreachable, 502/503/504 from a proxy) is
//   retried, with the very same request (same request_id), so the server's
//   idempotency makes the retry safe; nothing else is retried;
// - when the deadline passes or the server stays unavailable, decide()
//   answers "no action" (`fallback: true`) and check() answers
//   `allowed: false` (`fallback: true`) instead of throwing, unless
//   `raiseOnError` is set; every other failure throws the ConnectError
//   (code, message naming the field); track() and updateProfile() always
//   throw.
//
// Transport: fetch only (Node 18+, browsers, workers and edge functions), over
// the Connect protocol with JSON (default) or binary messages, or gRPC-Web.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  type Candidate,
  type CheckResponse,
  CheckRequestSchema,
  type ConsentState,
  ConsentUpdateSchema,
  type DecideResponse,
  DecideRequestSchema,
  type Degradation,
  DecisionService,
  EventSchema,
  FeedbackKind,
  type PurposeConsent,
  Reason,
  SegmentMembershipSchema,
  type TrackResponse,
  TrackRequestSchema,
  type UpdateProfileResponse,
  UpdateProfileRequestSchema,
} from "./gen/arbiter/v1/decision_pb.js";
import { fromValueMap, type PlainValue, toValueMap } from "./values.js";

/** The wire protocol: Connect with JSON or binary messages, or gRPC-Web. */
export type Protocol = "connect-json" | "connect-binary" | "grpc-web";

/** Default overall deadline per method, in milliseconds, retries included. */
export interface Timeouts {
  decide: number;
  check: number;
  track: number;
  updateProfile: number;
}

/** The Python client's defaults: tight for decisions (a backend in the same region). */
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({
  decide: 50,
  check: 50,
  track: 1000,
  updateProfile: 1000,
});

/**
 * Retries of UNAVAILABLE calls, with the same request, within the deadline.
 * Attempt n failing is followed by a pause drawn from [b/2, b] with
 * b = min(maxBackoffMs, initialBackoffMs * multiplier^(n-1)), unless that
 * would leave less than minAttemptMs before the deadline (then: give up).
 */
export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  minAttemptMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 3,
  initialBackoffMs: 5,
  maxBackoffMs: 100,
  multiplier: 2,
  minAttemptMs: 2,
});

/** Headers for every call (e.g. `authorization`), or a function that returns them per call. */
export type HeadersProvider =
  | Record<string, string>
  | (() => Record<string, string> | Promise<Record<string, string>>);

export interface ArbiterClientOptions {
  /** The server's HTTP address, e.g. "http://127.0.0.1:8080" (the `--http-listen` port). */
  baseUrl: string;
  protocol?: Protocol;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  headers?: HeadersProvider;
  /** Answer fallbacks with an error instead (decide/check). Default false. */
  raiseOnError?: boolean;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
  /** A transport you built yourself (e.g. @connectrpc/connect-node over HTTP/2); overrides protocol. */
  transport?: Transport;
}

/** Per-call options. */
export interface CallOptions {
  timeoutMs?: number;
  raiseOnError?: boolean;
  signal?: AbortSignal;
}

/** Why a decision or check fell back. */
export type FallbackReason = "deadline_exceeded" | "unavailable";

export interface DecideInput {
  customerId: string;
  placement?: string;
  channels?: string[];
  context?: Record<string, PlainValue>;
  limit?: number;
  explain?: boolean;
  dryRun?: boolean;
  /** Idempotency key; a fresh UUID when omitted. Retries reuse it. */
  requestId?: string;
}

/** One chosen action, with its payload as plain values. */
export interface Action {
  actionId: string;
  journeyId: string;
  stage: string;
  channel: string;
  variant: string;
  payload: Record<string, unknown>;
  trackingId: string;
  score: number;
  tags: string[];
  policyFallback: boolean;
}

/** A decision, or the "no action" fallback (`fallback: true`, no actions). */
export interface Decision {
  requestId: string;
  decisionId: string;
  policyVersion: string;
  /** Best first; empty means show or send nothing. */
  actions: Action[];
  /** Every candidate with outcome, reason and detail (when `explain` was set). */
  candidates: Candidate[];
  consent: PurposeConsent[];
  degradations: Degradation[];
  replayed: boolean;
  dryRun: boolean;
  fallback: boolean;
  fallbackReason?: FallbackReason;
  error?: ConnectError;
  /** The response as received (absent for a fallback). */
  response?: DecideResponse;
}

export interface CheckInput {
  customerId: string;
  actionId: string;
  channel: string;
  record?: boolean;
  context?: Record<string, PlainValue>;
  decisionId?: string;
  requestId?: string;
}

export interface CheckResult {
  requestId: string;
  allowed: boolean;
  reason: Reason;
  detail: string;
  recorded: boolean;
  replayed: boolean;
  policyVersion: string;
  degradations: Degradation[];
  fallback: boolean;
  fallbackReason?: FallbackReason;
  error?: ConnectError;
}

export interface EventInput {
  customerId: string;
  type: string;
  /** Unique per event; a fresh UUID when omitted. */
  eventId?: string;
  /** When it happened; now when omitted. */
  timestamp?: Date;
  properties?: Record<string, PlainValue>;
  version?: number;
  /** Feedback on a chosen action: the decision, the action's trackingId and the kind. */
  decisionId?: string;
  trackingId?: string;
  feedback?: FeedbackKind;
}

export interface ConsentInput {
  purpose: string;
  state: ConsentState;
  expiresAt?: Date;
}

export interface ProfileInput {
  customerId: string;
  source: string;
  timestamp?: Date;
  /** A null value removes the trait. */
  traits?: Record<string, PlainValue>;
  consents?: ConsentInput[];
  doNotContact?: boolean;
  /** The customer's complete segment membership; omitted = unchanged. */
  segments?: string[];
  requestId?: string;
}

function newId(): string {
  return globalThis.crypto.randomUUID();
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Is this failure "the server is not reachable now" (retryable, falls back)? */
export function isUnavailable(error: ConnectError): boolean {
  if (error.code === Code.Unavailable) return true;
  // fetch() rejects with a TypeError when it cannot connect at all.
  return error.code === Code.Unknown && error.cause instanceof TypeError;
}

/** Build the fetch-based transport for a protocol. */
export function createTransport(
  baseUrl: string,
  protocol: Protocol = "connect-json",
  fetchImpl?: typeof globalThis.fetch,
): Transport {
  const fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  if (protocol === "grpc-web") {
    return createGrpcWebTransport({ baseUrl, fetch });
  }
  return createConnectTransport({ baseUrl, fetch, useBinaryFormat: protocol === "connect-binary" });
}

export class ArbiterClient {
  readonly timeouts: Readonly<Timeouts>;
  readonly retry: Readonly<RetryPolicy>;
  readonly raiseOnError: boolean;
  private readonly stub: Client<typeof DecisionService>;
  private readonly headers?: HeadersProvider;

  constructor(options: ArbiterClientOptions) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.raiseOnError = options.raiseOnError ?? false;
    this.headers = options.headers;
    for (const [name, ms] of Object.entries(this.timeouts)) {
      if (!(ms > 0)) throw new RangeError(`timeouts.${name} must be > 0 ms`);
    }
    if (this.retry.maxAttempts < 1) throw new RangeError("retry.maxAttempts must be >= 1");
    const transport =
      options.transport ?? createTransport(options.baseUrl, options.protocol, options.fetch);
    this.stub = createClient(DecisionService, transport);
  }

  /** Which actions to show or send to a customer on a placement; "no action" on deadline/unavailable. */
  async decide(input: DecideInput, options: CallOptions = {}): Promise<Decision> {
    const request = create(DecideRequestSchema, {
      requestId: input.requestId ?? newId(),
      customerId: input.customerId,
      placement: input.placement ?? "",
      channels: input.channels ?? [],
      context: toValueMap(input.context, "context"),
      limit: input.limit ?? 0,
      explain: input.explain ?? false,
      dryRun: input.dryRun ?? false,
    });
    try {
      const response = await this.invoke(
        (opts) => this.stub.decide(request, opts),
        options.timeoutMs ?? this.timeouts.decide,
        options.signal,
      );
      return decisionOf(response, request.requestId);
    } catch (error) {
      const reason = this.fallbackReason(error, options.raiseOnError);
      if (reason === undefined) throw error;
      return {
        requestId: request.requestId,
        decisionId: "",
        policyVersion: "",
        actions: [],
        candidates: [],
        consent: [],
        degradations: [],
        replayed: false,
        dryRun: request.dryRun,
        fallback: true,
        fallbackReason: reason,
        error: error as ConnectError,
      };
    }
  }

  /** May this action go to this customer on this channel now? `allowed: false` on deadline/unavailable. */
  async check(input: CheckInput, options: CallOptions = {}): Promise<CheckResult> {
    const request = create(CheckRequestSchema, {
      requestId: input.requestId ?? newId(),
      customerId: input.customerId,
      actionId: input.actionId,
      channel: input.channel,
      record: input.record ?? false,
      context: toValueMap(input.context, "context"),
      decisionId: input.decisionId ?? "",
    });
    try {
      const r: CheckResponse = await this.invoke(
        (opts) => this.stub.check(request, opts),
        options.timeoutMs ?? this.timeouts.check,
        options.signal,
      );
      return {
        requestId: request.requestId,
        allowed: r.allowed,
        reason: r.reason,
        detail: r.detail,
        recorded: r.recorded,
        replayed: r.replayed,
        policyVersion: r.policyVersion,
        degradations: r.degradations,
        fallback: false,
      };
    } catch (error) {
      const reason = this.fallbackReason(error, options.raiseOnError);
      if (reason === undefined) throw error;
      return {
        requestId: request.requestId,
        allowed: false,
        reason: Reason.STATE_UNAVAILABLE,
        detail: `client fallback: ${reason}`,
        recorded: false,
        replayed: false,
        policyVersion: "",
        degradations: [],
        fallback: true,
        fallbackReason: reason,
        error: error as ConnectError,
      };
    }
  }

  /** Ingest one event or a batch (event ids make retries safe); results in order. Throws on failure. */
  async track(events: EventInput | EventInput[], options: CallOptions = {}): Promise<TrackResponse> {
    const request = create(TrackRequestSchema, {
      events: (Array.isArray(events) ? events : [events]).map((e, i) =>
        create(EventSchema, {
          eventId: e.eventId ?? newId(),
          customerId: e.customerId,
          type: e.type,
          version: e.version ?? 0,
          timestamp: timestampFromDate(e.timestamp ?? new Date()),
          properties: toValueMap(e.properties, `events[${i}].properties`),
          decisionId: e.decisionId ?? "",
          trackingId: e.trackingId ?? "",
          feedback: e.feedback ?? FeedbackKind.UNSPECIFIED,
        }),
      ),
    });
    return this.invoke(
      (opts) => this.stub.track(request, opts),
      options.timeoutMs ?? this.timeouts.track,
      options.signal,
    );
  }

  /** Feedback on a chosen action of a decision (impression, click, ...), as one Track event. */
  async feedback(
    decision: Decision,
    action: Action,
    kind: FeedbackKind,
    event: { customerId: string; type: string; properties?: Record<string, PlainValue> },
    options: CallOptions = {},
  ): Promise<TrackResponse> {
    return this.track(
      { ...event, decisionId: decision.decisionId, trackingId: action.trackingId, feedback: kind },
      options,
    );
  }

  /** Write traits, consent and segments (older writes never overwrite newer ones). Throws on failure. */
  async updateProfile(input: ProfileInput, options: CallOptions = {}): Promise<UpdateProfileResponse> {
    const request = create(UpdateProfileRequestSchema, {
      requestId: input.requestId ?? newId(),
      customerId: input.customerId,
      source: input.source,
      timestamp: timestampFromDate(input.timestamp ?? new Date()),
      traits: toValueMap(input.traits, "traits"),
      consents: (input.consents ?? []).map((c) =>
        create(ConsentUpdateSchema, {
          purpose: c.purpose,
          state: c.state,
          expiresAt: c.expiresAt ? timestampFromDate(c.expiresAt) : undefined,
        }),
      ),
      doNotContact: input.doNotContact,
      segments: input.segments ? create(SegmentMembershipSchema, { segments: input.segments }) : undefined,
    });
    return this.invoke(
      (opts) => this.stub.updateProfile(request, opts),
      options.timeoutMs ?? this.timeouts.updateProfile,
      options.signal,
    );
  }

  // -- internals ---------------------------------------------------------------

  /** One logical call: attempts of `call` within `budgetMs`, retrying only UNAVAILABLE. */
  private async invoke<T>(
    call: (opts: { timeoutMs: number; headers?: Record<string, string>; signal?: AbortSignal }) => Promise<T>,
    budgetMs: number,
    signal?: AbortSignal,
  ): Promise<T> {
    if (!(budgetMs > 0)) throw new RangeError("timeoutMs must be > 0");
    const deadline = Date.now() + budgetMs;
    const headers = typeof this.headers === "function" ? await this.headers() : this.headers;
    for (let attempt = 1; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) throw new ConnectError("deadline exceeded before the call", Code.DeadlineExceeded);
      try {
        return await call({ timeoutMs: Math.max(1, Math.floor(left)), headers, signal });
      } catch (raw) {
        const error = ConnectError.from(raw);
        if (!isUnavailable(error) || attempt >= this.retry.maxAttempts || signal?.aborted) throw error;
        const ceiling = Math.min(
          this.retry.maxBackoffMs,
          this.retry.initialBackoffMs * this.retry.multiplier ** (attempt - 1),
        );
        const pause = ceiling * (0.5 + Math.random() / 2);
        if (deadline - Date.now() - pause < this.retry.minAttemptMs) throw error;
        await sleep(pause, signal);
      }
    }
  }

  private fallbackReason(error: unknown, raiseOnError?: boolean): FallbackReason | undefined {
    if (raiseOnError ?? this.raiseOnError) return undefined;
    if (!(error instanceof ConnectError)) return undefined;
    if (error.code === Code.DeadlineExceeded) return "deadline_exceeded";
    if (isUnavailable(error)) return "unavailable";
    return undefined;
  }
}

function decisionOf(response: DecideResponse, requestId: string): Decision {
  return {
    requestId: response.requestId || requestId,
    decisionId: response.decisionId,
    policyVersion: response.policyVersion,
    actions: response.actions.map((a) => ({
      actionId: a.actionId,
      journeyId: a.journeyId,
      stage: a.stage,
      channel: a.channel,
      variant: a.variant,
      payload: fromValueMap(a.payload),
      trackingId: a.trackingId,
      score: a.score,
      tags: a.tags,
      policyFallback: a.policyFallback,
    })),
    candidates: response.candidates,
    consent: response.consent,
    degradations: response.degradations,
    replayed: response.replayed,
    dryRun: response.dryRun,
    fallback: false,
    response,
  };
}
