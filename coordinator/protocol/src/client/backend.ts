/**
 * The operator routes (secret key: open rounds, declare models, set budgets) and the auditor
 * routes (auditor key: the ledger, its key, budgets and model history, read-only). Used by the
 * CLI, the compliance dashboard, the demo and the tests; never by a page's SDK.
 */

import type * as z from "zod/mini";
import { type AdmissionIssuerRequest, AdmissionIssuerStatus } from "../wire/admission";
import { LedgerPage, LedgerPublicKey, PrivacyBudgetStatus } from "../wire/audit";
import { ModelVersion } from "../wire/model";
import { type OpenRoundRequest, RoundStatus } from "../wire/round";
import { type ModelDeclaration, ModelStatus, TrainingRoundPage } from "../wire/training";
import {
  type CallOptions,
  type ClientOptions,
  CoordinatorError,
  callJson,
  createHttp,
  type Http,
  seg,
} from "./http";

type Call = Pick<CallOptions, "signal">;
type PageCall = Pick<CallOptions, "signal" | "readBody">;

/** Body of `PUT /v1/privacy/budgets/{modelId}`; the coordinator validates it. */
export interface BudgetRequest {
  v: 1;
  epsilonCap: number;
  delta?: number;
  population?: number;
}

/** Routes both a secret and an auditor key may read. */
export interface ReadClient {
  readonly endpoint: string;
  /** `GET /v1/privacy/budgets/{modelId}`. */
  budget(modelId: string, o?: Call): Promise<PrivacyBudgetStatus>;
  /** `GET /v1/models/{modelId}`: the trainer's state. */
  modelStatus(modelId: string, o?: Call): Promise<ModelStatus>;
  /** `GET /v1/models/{modelId}/rounds`: the training history, newest first. */
  modelRounds(modelId: string, o?: Call): Promise<TrainingRoundPage>;
}

/** The operator's client (secret key). */
export interface OperatorClient extends ReadClient {
  /** `POST /v1/rounds`: opens a round by hand. */
  openRound(request: z.input<typeof OpenRoundRequest>, o?: Call): Promise<RoundStatus>;
  /** `GET /v1/rounds/{id}`. */
  roundStatus(roundId: string, o?: Call): Promise<RoundStatus>;
  /** `PUT /v1/models/{id}`: declares (or re-declares) a model. */
  declareModel(
    modelId: string,
    declaration: z.input<typeof ModelDeclaration>,
    o?: Call,
  ): Promise<ModelStatus>;
  /** `PUT /v1/privacy/budgets/{modelId}`. */
  setBudget(modelId: string, request: BudgetRequest, o?: Call): Promise<PrivacyBudgetStatus>;
  /** `GET /v1/models/{id}/latest`, or `null` before the first version. */
  latestModel(modelId: string, o?: Call): Promise<ModelVersion | null>;
  /** `PUT /v1/admission/issuer`: rounds opened from now on admit by this issuer's tokens. */
  registerAdmissionIssuer(request: AdmissionIssuerRequest, o?: Call): Promise<AdmissionIssuerStatus>;
}

/** A page request of `GET /v1/audit/ledger`. */
export interface LedgerPageRequest {
  model?: string;
  cursor?: string;
  limit?: number;
}

/** The auditor's client (auditor key). */
export interface AuditorClient extends ReadClient {
  /** `GET /v1/audit/public-key`. */
  publicKey(o?: Call): Promise<LedgerPublicKey>;
  /** One page of raw ledger rows (`readBody`: a strict reader of the page's text). */
  ledgerPage(request?: LedgerPageRequest, o?: PageCall): Promise<LedgerPage>;
  /** Every raw row, following `nextCursor`; `onPage` sees the running count. */
  ledger(
    request?: Omit<LedgerPageRequest, "cursor">,
    o?: PageCall & { onPage?: (rows: number, pages: number) => void; maxPages?: number },
  ): Promise<{ rows: unknown[]; pages: number }>;
}

function readClient(http: Http): ReadClient {
  const model = (id: string) => `/v1/models/${seg(id)}`;
  return {
    endpoint: http.endpoint,
    budget: (id, o) => callJson(http, PrivacyBudgetStatus, "GET", `/v1/privacy/budgets/${seg(id)}`, o),
    modelStatus: (id, o) => callJson(http, ModelStatus, "GET", model(id), o),
    modelRounds: (id, o) => callJson(http, TrainingRoundPage, "GET", `${model(id)}/rounds`, o),
  };
}

/** A client for the operator routes; `apiKey` must be secret (`fp_sec_…`). */
export function createOperatorClient(options: ClientOptions): OperatorClient {
  const http = createHttp(options, "secret");
  return {
    ...readClient(http),
    openRound: (request, o) => callJson(http, RoundStatus, "POST", "/v1/rounds", { ...o, body: request }),
    roundStatus: (id, o) => callJson(http, RoundStatus, "GET", `/v1/rounds/${seg(id)}`, o),
    declareModel: (id, declaration, o) =>
      callJson(http, ModelStatus, "PUT", `/v1/models/${seg(id)}`, { ...o, body: declaration }),
    setBudget: (id, request, o) =>
      callJson(http, PrivacyBudgetStatus, "PUT", `/v1/privacy/budgets/${seg(id)}`, { ...o, body: request }),
    registerAdmissionIssuer: (request, o) =>
      callJson(http, AdmissionIssuerStatus, "PUT", "/v1/admission/issuer", { ...o, body: request }),
    async latestModel(id, o) {
      try {
        return await callJson(http, ModelVersion, "GET", `/v1/models/${seg(id)}/latest`, o);
      } catch (error) {
        if (error instanceof CoordinatorError && error.status === 404) return null;
        throw error;
      }
    },
  };
}

/** A client for the auditor routes; `apiKey` must be an auditor key (`fp_aud_…`). */
export function createAuditorClient(options: ClientOptions): AuditorClient {
  const http = createHttp(options, "auditor");
  const ledgerPage: AuditorClient["ledgerPage"] = (request = {}, o) => {
    const query = new URLSearchParams({ cursor: request.cursor ?? "", limit: String(request.limit ?? 200) });
    if (request.model) query.set("model", request.model);
    return callJson(http, LedgerPage, "GET", `/v1/audit/ledger?${query}`, o);
  };
  return {
    ...readClient(http),
    publicKey: (o) => callJson(http, LedgerPublicKey, "GET", "/v1/audit/public-key", o),
    ledgerPage,
    async ledger(request = {}, o = {}) {
      const rows: unknown[] = [];
      let cursor = "";
      for (let pages = 1; pages <= (o.maxPages ?? 100_000); pages++) {
        const page = await ledgerPage({ ...request, cursor }, o);
        rows.push(...page.entries);
        o.onPage?.(rows.length, pages);
        if (!page.nextCursor) return { rows, pages };
        if (page.nextCursor === cursor)
          throw new CoordinatorError("bad_response", "the auditor API returned the same cursor twice", 200);
        cursor = page.nextCursor;
      }
      throw new CoordinatorError("bad_response", "the auditor API returned too many ledger pages", 200);
    },
  };
}
