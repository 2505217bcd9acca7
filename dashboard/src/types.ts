// Shapes of what the relay sends (see relay/src/api and tau-protocol.md).

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };

export interface TauEvent {
  id: string | null;
  event_id: string;
  event_type: string;
  event_source: string;
  event_data: Obj;
  created: string;
  origin: "twitch" | "test" | "replay" | string;
}

export interface EventPage {
  results: TauEvent[];
  next: string | null;
  previous: string | null;
}

export type Role = "overlay" | "bot" | "admin";

export interface WhoAmI {
  name: string;
  role: Role;
  event_types: string[] | null;
}

export interface CatalogType {
  name: string;
  subscription_type?: string;
  event_type: string;
  version: string;
  description: string;
  scopes: string[];
  active: boolean;
}

export interface EventTypesDoc {
  event_types: string[];
  types: { type: string; version: string }[];
  source: "environment" | "dashboard" | "operator" | string;
  environment: string[];
  scopes_needed: string[];
  scopes_granted: string[] | null;
  scopes_missing: string[];
}

export interface SubscriptionStatus {
  id?: string;
  type: string;
  version: string;
  status: string;
}

export interface Revocation {
  [k: string]: Json;
}

export interface ReplicaStatus {
  id: string;
  this_replica: boolean;
  /** Singleton jobs it holds: `eventsub-websocket`, `conduit-manager`, `conduit-shard:N`, … */
  holds: string[];
}

export interface StatusDoc {
  version: string;
  started_at: string;
  database: string;
  clients_connected: number;
  events_stored: number;
  last_event_at: string | null;
  revocations: Revocation[];
  /** The fleet's live replicas, the answering one first. */
  replicas?: ReplicaStatus[];
  twitch: {
    client_id_configured: boolean;
    /** Where the client id and secret come from (older relays: absent). */
    credentials_source?: "environment" | "dashboard" | null;
    webhook_secret_configured: boolean;
    broadcaster: string | null;
    redirect_uri?: string | null;
    event_types?: string[] | null;
    user_token: {
      state: "missing" | "valid" | "authorization_needed" | string;
      login: string | null;
      scopes: string[] | null;
      scopes_needed?: string[] | null;
      scopes_missing?: string[] | null;
      expires_at: string | null;
    };
    app_token: { state: string; error: string | null };
    eventsub: {
      transport: string;
      state: string;
      session_id: string | null;
      keepalive_seconds: number | null;
      connected_at: string | null;
      subscriptions: SubscriptionStatus[];
      skipped: string[];
      last_error: string | null;
    };
    conduit: Obj | null;
  };
}

export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  event_types: string[] | null;
  hint: string;
  created_us: number;
  last_used_us: number | null;
}

export const ROLE_RANK: Record<Role, number> = { overlay: 0, bot: 1, admin: 2 };

/** `GET /api/v1/streamers`: another channel this relay watches. */
export interface Streamer {
  id: string;
  twitch_username: string;
  twitch_id: string;
  streaming: boolean;
  disabled: boolean;
  created: string;
  updated: string;
  /** "spec": set by the Kubernetes TwitchChannel / TAU_STREAMERS, not removable here. */
  source: "api" | "spec" | string;
}

export interface Page<T> {
  next: string | null;
  previous: string | null;
  results: T[];
}

/** One stream of a watched streamer (`/api/v1/streamers/{id}/streams`). */
export interface Stream {
  id: string;
  stream_id: string;
  user_id: string;
  user_login: string;
  user_name: string;
  game_id: string;
  game_name: string;
  type: string;
  title: string;
  viewer_count: number;
  started_at: string;
  ended_at: string | null;
  language: string;
  thumbnail_url: string;
  tag_ids: null;
  tags: string[];
  is_mature: boolean;
}

/** `GET /api/v1/chat/senders`: an account the relay can send chat as. */
export interface ChatSender {
  login: string;
  user_id: string;
  display_name: string;
  kind: "broadcaster" | "bot" | string;
  can_send: boolean;
  reason: string | null;
}

/** `POST /api/v1/irc`'s answer: Twitch's verdict on one message. */
export interface ChatSendResult {
  message_id: string;
  is_sent: boolean;
  drop_reason: { code: string; message: string } | null;
  irc_channel: string;
  irc_username: string;
  /** Sent with the app token: Twitch shows the Chat Bot badge (older relays omit it). */
  badge?: boolean;
}

/** `GET /api/v1/chat-bots`: a separate Twitch account TAU reads and sends chat as (never its token). */
export interface ChatBot {
  id: string;
  user_name: string;
  user_id: string;
  user_login: string;
  /** Connected to Twitch chat right now. */
  connected: boolean;
  status: "ready" | "token_invalid" | "scope_missing" | string;
  reason: string | null;
  scopes: string[];
  /** Logins of the channels it joins. */
  channels: string[];
  created: string;
  updated: string;
  /** Its own EventSub WebSocket session reading chat (null: none; older relays omit it). */
  session?: BotSession | null;
}

/** A chat bot's EventSub WebSocket session, as the relay replica answering sees it. */
export interface BotSession {
  /** `standby`, `connecting`, `connected`, `reconnecting`, `backoff`. */
  state: string;
  session_id: string | null;
  connected_at: string | null;
  subscriptions: { id: string; type: string; version: string; condition: Record<string, unknown>; status: string }[];
  last_error: string | null;
}

/** `GET /api/v1/chat-bots/channels`: a channel a bot joins. */
export interface ChatBotChannel {
  id: string;
  /** `#login`. */
  channel: string;
  /** The bot's id. */
  chat_bot: string;
  status: "joined" | "pending" | "failed" | string;
  reason: string | null;
}

/** A frame of `/ws/chat-bots/status/` (besides `{"event": "keep_alive"}`). */
export interface ChatBotFrame {
  event: "Created" | "Updated" | "Deleted" | "keep_alive" | string;
  chatBot?: ChatBot;
}

/** `/api/v1/webhook-targets`: a receiver TAU forwards events to, signed as Twitch signs its webhooks. */
export interface WebhookTarget {
  id: string;
  name: string;
  url: string;
  /** EventSub types (`channel.follow`); empty: every type. */
  event_types: string[];
  conditions: Record<string, string> | null;
  status: "enabled" | "retrying" | "paused" | string;
  paused_reason: null | "manual" | "failing" | string;
  created_at: string;
  last_success_at: string | null;
  last_attempt_at: string | null;
  last_error: string | null;
  next_attempt_at: string | null;
  backlog: number;
  delivered: number;
  failed_attempts: number;
  secret_set: boolean;
}
