// Plain JavaScript values <-> arbiter.v1.Value, the typed values of request
// context, event properties, profile traits and action payloads.
//
// Numbers: an integer-valued number becomes `intValue` (a declared `double`
// accepts it), any other number `doubleValue`; pass a bigint for integers
// beyond 2^53, or `doubleValue(x)` to force a double. Date -> timestamp,
// Uint8Array -> bytes, arrays -> list, plain objects and Maps -> map,
// null/undefined -> null.

import { create } from "@bufbuild/protobuf";
import { NullValue, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Value } from "./gen/arbiter/v1/value_pb.js";
import { ListValueSchema, MapValueSchema, ValueSchema } from "./gen/arbiter/v1/value_pb.js";

/** A value the client converts to arbiter.v1.Value. */
export type PlainValue =
  | null
  | undefined
  | string
  | number
  | bigint
  | boolean
  | Date
  | Uint8Array
  | Value
  | readonly PlainValue[]
  | { readonly [key: string]: PlainValue };

/** A Value forced to `doubleValue` (an integer-valued number otherwise becomes `intValue`). */
export function doubleValue(x: number): Value {
  return create(ValueSchema, { kind: { case: "doubleValue", value: x } });
}

function isValue(x: object): x is Value {
  return "$typeName" in x && (x as { $typeName: unknown }).$typeName === "arbiter.v1.Value";
}

/** Convert one plain value; throws TypeError for what the wire cannot carry (NaN, functions, ...). */
export function toValue(x: PlainValue, path = "value"): Value {
  if (x === null || x === undefined) {
    return create(ValueSchema, { kind: { case: "nullValue", value: NullValue.NULL_VALUE } });
  }
  switch (typeof x) {
    case "string":
      return create(ValueSchema, { kind: { case: "stringValue", value: x } });
    case "boolean":
      return create(ValueSchema, { kind: { case: "boolValue", value: x } });
    case "bigint":
      return create(ValueSchema, { kind: { case: "intValue", value: x } });
    case "number":
      if (!Number.isFinite(x)) throw new TypeError(`${path}: NaN and infinities are not allowed`);
      return Number.isSafeInteger(x)
        ? create(ValueSchema, { kind: { case: "intValue", value: BigInt(x) } })
        : doubleValue(x);
    case "object":
      break;
    default:
      throw new TypeError(`${path}: cannot send a ${typeof x}`);
  }
  if (x instanceof Date) {
    return create(ValueSchema, { kind: { case: "timestampValue", value: timestampFromDate(x) } });
  }
  if (x instanceof Uint8Array) {
    return create(ValueSchema, { kind: { case: "bytesValue", value: x } });
  }
  if (Array.isArray(x)) {
    const values = (x as readonly PlainValue[]).map((v, i) => toValue(v, `${path}[${i}]`));
    return create(ValueSchema, {
      kind: { case: "listValue", value: create(ListValueSchema, { values }) },
    });
  }
  if (isValue(x)) return x;
  return create(ValueSchema, {
    kind: { case: "mapValue", value: create(MapValueSchema, { fields: toValueMap(x as Record<string, PlainValue>, path) }) },
  });
}

/** Convert a map of plain values (context, properties, traits). */
export function toValueMap(
  values: Readonly<Record<string, PlainValue>> | undefined,
  path = "values",
): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [key, value] of Object.entries(values ?? {})) {
    out[key] = toValue(value, `${path}.${key}`);
  }
  return out;
}

/** A plain JavaScript value of an arbiter.v1.Value (int64 as number when safe, else bigint). */
export function fromValue(value: Value): unknown {
  const kind = value.kind;
  switch (kind.case) {
    case "nullValue":
    case undefined:
      return null;
    case "intValue": {
      const n = Number(kind.value);
      return Number.isSafeInteger(n) ? n : kind.value;
    }
    case "timestampValue":
      return timestampDate(kind.value);
    case "durationValue":
      return Number(kind.value.seconds) * 1000 + kind.value.nanos / 1e6; // milliseconds
    case "listValue":
      return kind.value.values.map(fromValue);
    case "mapValue":
      return fromValueMap(kind.value.fields);
    default:
      return kind.value;
  }
}

/** Plain values of a map of arbiter.v1.Value (e.g. an action's payload). */
export function fromValueMap(values: Readonly<Record<string, Value>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) out[key] = fromValue(value);
  return out;
}
