import datetime

from arbiter.v1 import decision_pb2 as _decision_pb2
from arbiter.v1 import value_pb2 as _value_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JourneyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOURNEY_STATUS_UNSPECIFIED: _ClassVar[JourneyStatus]
    JOURNEY_STATUS_ACTIVE: _ClassVar[JourneyStatus]
    JOURNEY_STATUS_PAUSED: _ClassVar[JourneyStatus]
    JOURNEY_STATUS_RETIRED: _ClassVar[JourneyStatus]
JOURNEY_STATUS_UNSPECIFIED: JourneyStatus
JOURNEY_STATUS_ACTIVE: JourneyStatus
JOURNEY_STATUS_PAUSED: JourneyStatus
JOURNEY_STATUS_RETIRED: JourneyStatus

class PolicyInfo(_message.Message):
    __slots__ = ("version", "digest", "activated_at", "activated_by", "test_result", "reason")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_BY_FIELD_NUMBER: _ClassVar[int]
    TEST_RESULT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    version: str
    digest: str
    activated_at: _timestamp_pb2.Timestamp
    activated_by: str
    test_result: str
    reason: str
    def __init__(self, version: _Optional[str] = ..., digest: _Optional[str] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activated_by: _Optional[str] = ..., test_result: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PolicyError(_message.Message):
    __slots__ = ("file", "line", "column", "code", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    column: int
    code: str
    message: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PolicyFile(_message.Message):
    __slots__ = ("path", "content")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    path: str
    content: bytes
    def __init__(self, path: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class PolicyBundle(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[PolicyFile]
    def __init__(self, files: _Optional[_Iterable[_Union[PolicyFile, _Mapping]]] = ...) -> None: ...

class JourneyInfo(_message.Message):
    __slots__ = ("journey_id", "status", "paused_by_operator", "reason", "changed_at", "until", "paused_by")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_BY_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAUSED_BY_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    status: JourneyStatus
    paused_by_operator: bool
    reason: str
    changed_at: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    paused_by: str
    def __init__(self, journey_id: _Optional[str] = ..., status: _Optional[_Union[JourneyStatus, str]] = ..., paused_by_operator: _Optional[bool] = ..., reason: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., paused_by: _Optional[str] = ...) -> None: ...

class PauseInfo(_message.Message):
    __slots__ = ("kind", "target", "paused", "reason", "changed_by", "changed_at", "until")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    target: str
    paused: bool
    reason: str
    changed_by: str
    changed_at: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[str] = ..., target: _Optional[str] = ..., paused: _Optional[bool] = ..., reason: _Optional[str] = ..., changed_by: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReplicaInfo(_message.Message):
    __slots__ = ("replica_id", "version", "digest", "seen_at", "error")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    version: str
    digest: str
    seen_at: _timestamp_pb2.Timestamp
    error: str
    def __init__(self, replica_id: _Optional[str] = ..., version: _Optional[str] = ..., digest: _Optional[str] = ..., seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class GetPolicyStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPolicyStatusResponse(_message.Message):
    __slots__ = ("active", "history", "journeys", "last_errors", "pauses", "replicas")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    JOURNEYS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERRORS_FIELD_NUMBER: _ClassVar[int]
    PAUSES_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    active: PolicyInfo
    history: _containers.RepeatedCompositeFieldContainer[PolicyInfo]
    journeys: _containers.RepeatedCompositeFieldContainer[JourneyInfo]
    last_errors: _containers.RepeatedCompositeFieldContainer[PolicyError]
    pauses: _containers.RepeatedCompositeFieldContainer[PauseInfo]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaInfo]
    def __init__(self, active: _Optional[_Union[PolicyInfo, _Mapping]] = ..., history: _Optional[_Iterable[_Union[PolicyInfo, _Mapping]]] = ..., journeys: _Optional[_Iterable[_Union[JourneyInfo, _Mapping]]] = ..., last_errors: _Optional[_Iterable[_Union[PolicyError, _Mapping]]] = ..., pauses: _Optional[_Iterable[_Union[PauseInfo, _Mapping]]] = ..., replicas: _Optional[_Iterable[_Union[ReplicaInfo, _Mapping]]] = ...) -> None: ...

class ValidatePolicyRequest(_message.Message):
    __slots__ = ("directory", "bundle")
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    directory: str
    bundle: PolicyBundle
    def __init__(self, directory: _Optional[str] = ..., bundle: _Optional[_Union[PolicyBundle, _Mapping]] = ...) -> None: ...

class ValidatePolicyResponse(_message.Message):
    __slots__ = ("valid", "policy", "errors")
    VALID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    policy: PolicyInfo
    errors: _containers.RepeatedCompositeFieldContainer[PolicyError]
    def __init__(self, valid: _Optional[bool] = ..., policy: _Optional[_Union[PolicyInfo, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[PolicyError, _Mapping]]] = ...) -> None: ...

class ActivatePolicyRequest(_message.Message):
    __slots__ = ("directory", "bundle", "expected_digest", "reason")
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    directory: str
    bundle: PolicyBundle
    expected_digest: str
    reason: str
    def __init__(self, directory: _Optional[str] = ..., bundle: _Optional[_Union[PolicyBundle, _Mapping]] = ..., expected_digest: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ActivatePolicyResponse(_message.Message):
    __slots__ = ("active", "previous")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    active: PolicyInfo
    previous: PolicyInfo
    def __init__(self, active: _Optional[_Union[PolicyInfo, _Mapping]] = ..., previous: _Optional[_Union[PolicyInfo, _Mapping]] = ...) -> None: ...

class RollbackPolicyRequest(_message.Message):
    __slots__ = ("digest", "reason")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    digest: str
    reason: str
    def __init__(self, digest: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackPolicyResponse(_message.Message):
    __slots__ = ("active", "previous")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    active: PolicyInfo
    previous: PolicyInfo
    def __init__(self, active: _Optional[_Union[PolicyInfo, _Mapping]] = ..., previous: _Optional[_Union[PolicyInfo, _Mapping]] = ...) -> None: ...

class PauseJourneyRequest(_message.Message):
    __slots__ = ("journey_id", "reason", "until")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    reason: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, journey_id: _Optional[str] = ..., reason: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PauseJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: JourneyInfo
    def __init__(self, journey: _Optional[_Union[JourneyInfo, _Mapping]] = ...) -> None: ...

class ResumeJourneyRequest(_message.Message):
    __slots__ = ("journey_id", "reason")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    reason: str
    def __init__(self, journey_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumeJourneyResponse(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: JourneyInfo
    def __init__(self, journey: _Optional[_Union[JourneyInfo, _Mapping]] = ...) -> None: ...

class PauseActionRequest(_message.Message):
    __slots__ = ("action_id", "reason", "until")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    reason: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, action_id: _Optional[str] = ..., reason: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PauseActionResponse(_message.Message):
    __slots__ = ("pause",)
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    pause: PauseInfo
    def __init__(self, pause: _Optional[_Union[PauseInfo, _Mapping]] = ...) -> None: ...

class ResumeActionRequest(_message.Message):
    __slots__ = ("action_id", "reason")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    reason: str
    def __init__(self, action_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumeActionResponse(_message.Message):
    __slots__ = ("pause",)
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    pause: PauseInfo
    def __init__(self, pause: _Optional[_Union[PauseInfo, _Mapping]] = ...) -> None: ...

class PauseChannelRequest(_message.Message):
    __slots__ = ("channel_id", "reason", "until")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    reason: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, channel_id: _Optional[str] = ..., reason: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PauseChannelResponse(_message.Message):
    __slots__ = ("pause",)
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    pause: PauseInfo
    def __init__(self, pause: _Optional[_Union[PauseInfo, _Mapping]] = ...) -> None: ...

class ResumeChannelRequest(_message.Message):
    __slots__ = ("channel_id", "reason")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    reason: str
    def __init__(self, channel_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumeChannelResponse(_message.Message):
    __slots__ = ("pause",)
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    pause: PauseInfo
    def __init__(self, pause: _Optional[_Union[PauseInfo, _Mapping]] = ...) -> None: ...

class ExplainDecisionRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class ExplainDecisionResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: DecisionRecord
    def __init__(self, record: _Optional[_Union[DecisionRecord, _Mapping]] = ...) -> None: ...

class DecisionRecord(_message.Message):
    __slots__ = ("decision_id", "request_id", "customer_id", "placement", "channels", "context", "limit", "policy_version", "decided_at", "actions", "candidates", "consent", "degradations", "held_out_actions", "kind", "dry_run", "committed", "caller", "policy_digest", "masked_fields", "record_json")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    DEGRADATIONS_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    POLICY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    request_id: str
    customer_id: str
    placement: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    context: _containers.MessageMap[str, _value_pb2.Value]
    limit: int
    policy_version: str
    decided_at: _timestamp_pb2.Timestamp
    actions: _containers.RepeatedCompositeFieldContainer[_decision_pb2.ChosenAction]
    candidates: _containers.RepeatedCompositeFieldContainer[_decision_pb2.Candidate]
    consent: _containers.RepeatedCompositeFieldContainer[_decision_pb2.PurposeConsent]
    degradations: _containers.RepeatedCompositeFieldContainer[_decision_pb2.Degradation]
    held_out_actions: _containers.RepeatedCompositeFieldContainer[_decision_pb2.ChosenAction]
    kind: str
    dry_run: bool
    committed: bool
    caller: str
    policy_digest: str
    masked_fields: _containers.RepeatedScalarFieldContainer[str]
    record_json: str
    def __init__(self, decision_id: _Optional[str] = ..., request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., placement: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., context: _Optional[_Mapping[str, _value_pb2.Value]] = ..., limit: _Optional[int] = ..., policy_version: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[_decision_pb2.ChosenAction, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[_decision_pb2.Candidate, _Mapping]]] = ..., consent: _Optional[_Iterable[_Union[_decision_pb2.PurposeConsent, _Mapping]]] = ..., degradations: _Optional[_Iterable[_Union[_decision_pb2.Degradation, _Mapping]]] = ..., held_out_actions: _Optional[_Iterable[_Union[_decision_pb2.ChosenAction, _Mapping]]] = ..., kind: _Optional[str] = ..., dry_run: _Optional[bool] = ..., committed: _Optional[bool] = ..., caller: _Optional[str] = ..., policy_digest: _Optional[str] = ..., masked_fields: _Optional[_Iterable[str]] = ..., record_json: _Optional[str] = ...) -> None: ...

class ExportCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "page_size", "page_token")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    page_size: int
    page_token: str
    def __init__(self, customer_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ExportCustomerResponse(_message.Message):
    __slots__ = ("customer_id", "traits", "consent", "do_not_contact", "state", "exported_at", "next_page_token")
    class TraitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    DO_NOT_CONTACT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    traits: _containers.MessageMap[str, _value_pb2.Value]
    consent: _containers.RepeatedCompositeFieldContainer[_decision_pb2.PurposeConsent]
    do_not_contact: bool
    state: _value_pb2.Value
    exported_at: _timestamp_pb2.Timestamp
    next_page_token: str
    def __init__(self, customer_id: _Optional[str] = ..., traits: _Optional[_Mapping[str, _value_pb2.Value]] = ..., consent: _Optional[_Iterable[_Union[_decision_pb2.PurposeConsent, _Mapping]]] = ..., do_not_contact: _Optional[bool] = ..., state: _Optional[_Union[_value_pb2.Value, _Mapping]] = ..., exported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ForgetCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ForgetCustomerResponse(_message.Message):
    __slots__ = ("existed", "forgotten_at")
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    FORGOTTEN_AT_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    forgotten_at: _timestamp_pb2.Timestamp
    def __init__(self, existed: _Optional[bool] = ..., forgotten_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
