import datetime

from arbiter.v1 import value_pb2 as _value_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_SELECTED: _ClassVar[Reason]
    REASON_ELIGIBLE: _ClassVar[Reason]
    REASON_CONSENT_DENIED: _ClassVar[Reason]
    REASON_CONSENT_UNKNOWN: _ClassVar[Reason]
    REASON_CONSENT_EXPIRED: _ClassVar[Reason]
    REASON_DO_NOT_CONTACT: _ClassVar[Reason]
    REASON_CAPPED: _ClassVar[Reason]
    REASON_SUPPRESSED: _ClassVar[Reason]
    REASON_INELIGIBLE: _ClassVar[Reason]
    REASON_QUIET_HOURS: _ClassVar[Reason]
    REASON_HOLDOUT: _ClassVar[Reason]
    REASON_CONTROL_GROUP: _ClassVar[Reason]
    REASON_PAUSED: _ClassVar[Reason]
    REASON_OUTSIDE_VALIDITY: _ClassVar[Reason]
    REASON_LOST_ARBITRATION: _ClassVar[Reason]
    REASON_JOURNEY_CONSTRAINT: _ClassVar[Reason]
    REASON_CHANNEL_LIMIT: _ClassVar[Reason]
    REASON_LIMIT_REACHED: _ClassVar[Reason]
    REASON_STATE_UNAVAILABLE: _ClassVar[Reason]
    REASON_CHANNEL_NOT_ALLOWED: _ClassVar[Reason]
    REASON_NOT_IN_STAGE: _ClassVar[Reason]

class CandidateOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_OUTCOME_UNSPECIFIED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_SELECTED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_FILTERED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_NOT_SELECTED: _ClassVar[CandidateOutcome]

class ConsentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_STATE_UNSPECIFIED: _ClassVar[ConsentState]
    CONSENT_STATE_GRANTED: _ClassVar[ConsentState]
    CONSENT_STATE_DENIED: _ClassVar[ConsentState]

class FeedbackKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_KIND_UNSPECIFIED: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_IMPRESSION: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_CLICK: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_CONVERSION: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_DISMISS: _ClassVar[FeedbackKind]

class EventStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_STATUS_UNSPECIFIED: _ClassVar[EventStatus]
    EVENT_STATUS_APPLIED: _ClassVar[EventStatus]
    EVENT_STATUS_DUPLICATE: _ClassVar[EventStatus]
    EVENT_STATUS_REJECTED: _ClassVar[EventStatus]

class ProfileWriteOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROFILE_WRITE_OUTCOME_UNSPECIFIED: _ClassVar[ProfileWriteOutcome]
    PROFILE_WRITE_OUTCOME_APPLIED: _ClassVar[ProfileWriteOutcome]
    PROFILE_WRITE_OUTCOME_IGNORED_STALE: _ClassVar[ProfileWriteOutcome]

class ProfileFieldKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROFILE_FIELD_KIND_UNSPECIFIED: _ClassVar[ProfileFieldKind]
    PROFILE_FIELD_KIND_TRAIT: _ClassVar[ProfileFieldKind]
    PROFILE_FIELD_KIND_CONSENT: _ClassVar[ProfileFieldKind]
    PROFILE_FIELD_KIND_DO_NOT_CONTACT: _ClassVar[ProfileFieldKind]
    PROFILE_FIELD_KIND_SEGMENTS: _ClassVar[ProfileFieldKind]
REASON_UNSPECIFIED: Reason
REASON_SELECTED: Reason
REASON_ELIGIBLE: Reason
REASON_CONSENT_DENIED: Reason
REASON_CONSENT_UNKNOWN: Reason
REASON_CONSENT_EXPIRED: Reason
REASON_DO_NOT_CONTACT: Reason
REASON_CAPPED: Reason
REASON_SUPPRESSED: Reason
REASON_INELIGIBLE: Reason
REASON_QUIET_HOURS: Reason
REASON_HOLDOUT: Reason
REASON_CONTROL_GROUP: Reason
REASON_PAUSED: Reason
REASON_OUTSIDE_VALIDITY: Reason
REASON_LOST_ARBITRATION: Reason
REASON_JOURNEY_CONSTRAINT: Reason
REASON_CHANNEL_LIMIT: Reason
REASON_LIMIT_REACHED: Reason
REASON_STATE_UNAVAILABLE: Reason
REASON_CHANNEL_NOT_ALLOWED: Reason
REASON_NOT_IN_STAGE: Reason
CANDIDATE_OUTCOME_UNSPECIFIED: CandidateOutcome
CANDIDATE_OUTCOME_SELECTED: CandidateOutcome
CANDIDATE_OUTCOME_FILTERED: CandidateOutcome
CANDIDATE_OUTCOME_NOT_SELECTED: CandidateOutcome
CONSENT_STATE_UNSPECIFIED: ConsentState
CONSENT_STATE_GRANTED: ConsentState
CONSENT_STATE_DENIED: ConsentState
FEEDBACK_KIND_UNSPECIFIED: FeedbackKind
FEEDBACK_KIND_IMPRESSION: FeedbackKind
FEEDBACK_KIND_CLICK: FeedbackKind
FEEDBACK_KIND_CONVERSION: FeedbackKind
FEEDBACK_KIND_DISMISS: FeedbackKind
EVENT_STATUS_UNSPECIFIED: EventStatus
EVENT_STATUS_APPLIED: EventStatus
EVENT_STATUS_DUPLICATE: EventStatus
EVENT_STATUS_REJECTED: EventStatus
PROFILE_WRITE_OUTCOME_UNSPECIFIED: ProfileWriteOutcome
PROFILE_WRITE_OUTCOME_APPLIED: ProfileWriteOutcome
PROFILE_WRITE_OUTCOME_IGNORED_STALE: ProfileWriteOutcome
PROFILE_FIELD_KIND_UNSPECIFIED: ProfileFieldKind
PROFILE_FIELD_KIND_TRAIT: ProfileFieldKind
PROFILE_FIELD_KIND_CONSENT: ProfileFieldKind
PROFILE_FIELD_KIND_DO_NOT_CONTACT: ProfileFieldKind
PROFILE_FIELD_KIND_SEGMENTS: ProfileFieldKind

class DecideRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "placement", "channels", "limit", "context", "explain", "dry_run", "propensities")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    class PropensitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    placement: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    context: _containers.MessageMap[str, _value_pb2.Value]
    explain: bool
    dry_run: bool
    propensities: _containers.ScalarMap[str, float]
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., placement: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., context: _Optional[_Mapping[str, _value_pb2.Value]] = ..., explain: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., propensities: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decision_id", "request_id", "policy_version", "decided_at", "actions", "consent", "degradations", "candidates", "replayed", "dry_run", "not_before")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    DEGRADATIONS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    request_id: str
    policy_version: str
    decided_at: _timestamp_pb2.Timestamp
    actions: _containers.RepeatedCompositeFieldContainer[ChosenAction]
    consent: _containers.RepeatedCompositeFieldContainer[PurposeConsent]
    degradations: _containers.RepeatedCompositeFieldContainer[Degradation]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    replayed: bool
    dry_run: bool
    not_before: _timestamp_pb2.Timestamp
    def __init__(self, decision_id: _Optional[str] = ..., request_id: _Optional[str] = ..., policy_version: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[ChosenAction, _Mapping]]] = ..., consent: _Optional[_Iterable[_Union[PurposeConsent, _Mapping]]] = ..., degradations: _Optional[_Iterable[_Union[Degradation, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., replayed: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ChosenAction(_message.Message):
    __slots__ = ("action_id", "journey_id", "stage", "channel", "variant", "payload", "tracking_id", "score", "tags", "policy_fallback")
    class PayloadEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    journey_id: str
    stage: str
    channel: str
    variant: str
    payload: _containers.MessageMap[str, _value_pb2.Value]
    tracking_id: str
    score: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    policy_fallback: bool
    def __init__(self, action_id: _Optional[str] = ..., journey_id: _Optional[str] = ..., stage: _Optional[str] = ..., channel: _Optional[str] = ..., variant: _Optional[str] = ..., payload: _Optional[_Mapping[str, _value_pb2.Value]] = ..., tracking_id: _Optional[str] = ..., score: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., policy_fallback: _Optional[bool] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("action_id", "journey_id", "stage", "channel", "outcome", "reason", "detail", "score", "variant", "not_before")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    journey_id: str
    stage: str
    channel: str
    outcome: CandidateOutcome
    reason: Reason
    detail: str
    score: float
    variant: str
    not_before: _timestamp_pb2.Timestamp
    def __init__(self, action_id: _Optional[str] = ..., journey_id: _Optional[str] = ..., stage: _Optional[str] = ..., channel: _Optional[str] = ..., outcome: _Optional[_Union[CandidateOutcome, str]] = ..., reason: _Optional[_Union[Reason, str]] = ..., detail: _Optional[str] = ..., score: _Optional[float] = ..., variant: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PurposeConsent(_message.Message):
    __slots__ = ("purpose", "state", "allowed", "reason", "source", "updated_at", "expires_at")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    state: ConsentState
    allowed: bool
    reason: Reason
    source: str
    updated_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, purpose: _Optional[str] = ..., state: _Optional[_Union[ConsentState, str]] = ..., allowed: _Optional[bool] = ..., reason: _Optional[_Union[Reason, str]] = ..., source: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Degradation(_message.Message):
    __slots__ = ("reason", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: Reason
    detail: str
    def __init__(self, reason: _Optional[_Union[Reason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "action_id", "channel", "record", "context", "decision_id")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    action_id: str
    channel: str
    record: bool
    context: _containers.MessageMap[str, _value_pb2.Value]
    decision_id: str
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., action_id: _Optional[str] = ..., channel: _Optional[str] = ..., record: _Optional[bool] = ..., context: _Optional[_Mapping[str, _value_pb2.Value]] = ..., decision_id: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "reason", "detail", "recorded", "policy_version", "degradations", "replayed", "not_before")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADATIONS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: Reason
    detail: str
    recorded: bool
    policy_version: str
    degradations: _containers.RepeatedCompositeFieldContainer[Degradation]
    replayed: bool
    not_before: _timestamp_pb2.Timestamp
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[_Union[Reason, str]] = ..., detail: _Optional[str] = ..., recorded: _Optional[bool] = ..., policy_version: _Optional[str] = ..., degradations: _Optional[_Iterable[_Union[Degradation, _Mapping]]] = ..., replayed: _Optional[bool] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "customer_id", "type", "version", "timestamp", "properties", "decision_id", "tracking_id", "feedback")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    customer_id: str
    type: str
    version: int
    timestamp: _timestamp_pb2.Timestamp
    properties: _containers.MessageMap[str, _value_pb2.Value]
    decision_id: str
    tracking_id: str
    feedback: FeedbackKind
    def __init__(self, event_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., type: _Optional[str] = ..., version: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., properties: _Optional[_Mapping[str, _value_pb2.Value]] = ..., decision_id: _Optional[str] = ..., tracking_id: _Optional[str] = ..., feedback: _Optional[_Union[FeedbackKind, str]] = ...) -> None: ...

class TrackRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class TrackResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("event_id", "status", "field", "detail")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    status: EventStatus
    field: str
    detail: str
    def __init__(self, event_id: _Optional[str] = ..., status: _Optional[_Union[EventStatus, str]] = ..., field: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class UpdateProfileRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "source", "timestamp", "traits", "consents", "do_not_contact", "segments")
    class TraitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    DO_NOT_CONTACT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    source: str
    timestamp: _timestamp_pb2.Timestamp
    traits: _containers.MessageMap[str, _value_pb2.Value]
    consents: _containers.RepeatedCompositeFieldContainer[ConsentUpdate]
    do_not_contact: bool
    segments: SegmentMembership
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., source: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., traits: _Optional[_Mapping[str, _value_pb2.Value]] = ..., consents: _Optional[_Iterable[_Union[ConsentUpdate, _Mapping]]] = ..., do_not_contact: _Optional[bool] = ..., segments: _Optional[_Union[SegmentMembership, _Mapping]] = ...) -> None: ...

class SegmentMembership(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segments: _Optional[_Iterable[str]] = ...) -> None: ...

class ConsentUpdate(_message.Message):
    __slots__ = ("purpose", "state", "expires_at")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    state: ConsentState
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, purpose: _Optional[str] = ..., state: _Optional[_Union[ConsentState, str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateProfileResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ProfileFieldResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ProfileFieldResult, _Mapping]]] = ...) -> None: ...

class ProfileFieldResult(_message.Message):
    __slots__ = ("kind", "name", "outcome", "stored_timestamp")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STORED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    kind: ProfileFieldKind
    name: str
    outcome: ProfileWriteOutcome
    stored_timestamp: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[ProfileFieldKind, str]] = ..., name: _Optional[str] = ..., outcome: _Optional[_Union[ProfileWriteOutcome, str]] = ..., stored_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
