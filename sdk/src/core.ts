/**
 * The tracking core: events, store, features and profile. It holds no network code (sync
 * and model pulls load lazily through `import()`), and its minified + gzip size is checked
 * against the 20 KB budget by `test/node/bundle-size.test.ts`.
 */
export {
  type ConsentChoice,
  type ConsentDecision,
  type ConsentState,
  type ConsentUse,
  DEFAULT_TCF_PURPOSES,
  decideUse,
  resolveConsent,
  type TcfApi,
  type TcfPurposes,
  type TcfSignal,
  tcfSignal,
} from "./consent";
export { FedprofileError, InvalidEventError, StorageError, type StorageErrorCode } from "./errors";
export {
  isUsedEvent,
  resolveEventName,
  SPEC_EVENT_NAMES,
  type SpecEventName,
  UNUSED_EVENT_NAMES,
  type UnusedEventName,
  V1_ALIASES,
} from "./events/catalogue";
export { type DecimalSeparator, type FieldProblem, parseNumeric } from "./events/coerce";
export {
  EVENT_NAMES,
  type EventName,
  type EventProperties,
  MAX_LINES,
  type ParseOptions,
  type ParseOutcome,
  type Product,
  parseEvent,
  type StoredEvent,
  type TrackedEvent,
} from "./events/schemas";
export {
  type Affinity,
  assignTags,
  computeFeatures,
  DEFAULT_TAG_THRESHOLDS,
  type Features,
  type PriceBand,
  type ProfileConfig,
  summarise,
  type Tag,
  type TagThresholds,
} from "./features/features";
export {
  type CurrencyOutcome,
  lineTotal,
  type OrderValue,
  orderValue,
  type RateTable,
  type RefundAmount,
  refundAmount,
  toShopCurrency,
} from "./features/money";
export {
  applyEvent,
  DEFAULT_FEATURE_CONFIG,
  emptyFeatureState,
  type FeatureConfig,
  type FeatureState,
  type OrderTotals,
  orderTotals,
} from "./features/state";
export {
  DEFAULT_VECTOR_REFERENCE,
  profileVector,
  VECTOR_FIELDS,
  type VectorField,
  type VectorReference,
} from "./features/vector";
export {
  type FloorViolation,
  PolicyRefusedError,
  type PrivacyPolicy,
  type PrivacyPolicyOption,
} from "./privacy-policy";
export {
  ACTIVITY_MODEL,
  createProfiler,
  DEFAULT_PROFILE_CONFIG,
  type Profile,
  type Profiler,
  type ProfilerEvent,
  type ProfilerOptions,
  type SyncOutcome,
} from "./profiler";
export { deleteDatabase, openIndexedDbStore } from "./store/indexeddb-store";
export { createMemoryStore } from "./store/memory-store";
export type { CachedModel, OutboxItem, ProfileStore, RetentionLimits } from "./store/types";
export type { AdmissionOptions } from "./sync/admission";
export type {
  DroppedCounts,
  DropReason,
  TrackCallback,
  TrackOptions,
  TrackResult,
  TrackWarning,
  WarningCode,
} from "./track";
