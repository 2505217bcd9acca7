//! Which subscription types exist and what authorization they need.
//!
//! The type list is the union of Twitch's subscription-type table and its
//! example payloads (early 2026). Scope requirements cover the types a bot or
//! overlay uses; types missing from [`required_scopes`] need none here.

/// Every `(type, version)` pair Twitch accepts; anything else is a 400.
pub const KNOWN_TYPES: &[(&str, &str)] = &[
    ("automod.message.hold", "1"),
    ("automod.message.hold", "2"),
    ("automod.message.update", "1"),
    ("automod.message.update", "2"),
    ("automod.settings.update", "1"),
    ("automod.terms.update", "1"),
    ("channel.ad_break.begin", "1"),
    ("channel.ban", "1"),
    ("channel.bits.use", "1"),
    (
        "channel.channel_points_automatic_reward_redemption.add",
        "1",
    ),
    (
        "channel.channel_points_automatic_reward_redemption.add",
        "2",
    ),
    ("channel.channel_points_custom_reward.add", "1"),
    ("channel.channel_points_custom_reward.remove", "1"),
    ("channel.channel_points_custom_reward.update", "1"),
    ("channel.channel_points_custom_reward_redemption.add", "1"),
    (
        "channel.channel_points_custom_reward_redemption.update",
        "1",
    ),
    ("channel.charity_campaign.donate", "1"),
    ("channel.charity_campaign.progress", "1"),
    ("channel.charity_campaign.start", "1"),
    ("channel.charity_campaign.stop", "1"),
    ("channel.chat.clear", "1"),
    ("channel.chat.clear_user_messages", "1"),
    ("channel.chat.message", "1"),
    ("channel.chat.message_delete", "1"),
    ("channel.chat.notification", "1"),
    ("channel.chat.user_message_hold", "1"),
    ("channel.chat.user_message_update", "1"),
    ("channel.chat_settings.update", "1"),
    ("channel.cheer", "1"),
    ("channel.follow", "2"),
    ("channel.goal.begin", "1"),
    ("channel.goal.end", "1"),
    ("channel.goal.progress", "1"),
    ("channel.guest_star_guest.update", "beta"),
    ("channel.guest_star_session.begin", "beta"),
    ("channel.guest_star_session.end", "beta"),
    ("channel.guest_star_settings.update", "beta"),
    ("channel.hype_train.begin", "2"),
    ("channel.hype_train.end", "2"),
    ("channel.hype_train.progress", "2"),
    ("channel.moderate", "1"),
    ("channel.moderate", "2"),
    ("channel.moderator.add", "1"),
    ("channel.moderator.remove", "1"),
    ("channel.poll.begin", "1"),
    ("channel.poll.end", "1"),
    ("channel.poll.progress", "1"),
    ("channel.prediction.begin", "1"),
    ("channel.prediction.end", "1"),
    ("channel.prediction.lock", "1"),
    ("channel.prediction.progress", "1"),
    ("channel.raid", "1"),
    ("channel.shared_chat.begin", "1"),
    ("channel.shared_chat.end", "1"),
    ("channel.shared_chat.update", "1"),
    ("channel.shield_mode.begin", "1"),
    ("channel.shield_mode.end", "1"),
    ("channel.shoutout.create", "1"),
    ("channel.shoutout.receive", "1"),
    ("channel.subscribe", "1"),
    ("channel.subscription.end", "1"),
    ("channel.subscription.gift", "1"),
    ("channel.subscription.message", "1"),
    ("channel.suspicious_user.message", "1"),
    ("channel.suspicious_user.update", "1"),
    ("channel.unban", "1"),
    ("channel.unban_request.create", "1"),
    ("channel.unban_request.resolve", "1"),
    ("channel.update", "2"),
    ("channel.vip.add", "1"),
    ("channel.vip.remove", "1"),
    ("channel.warning.acknowledge", "1"),
    ("channel.warning.send", "1"),
    ("conduit.shard.disabled", "1"),
    ("drop.entitlement.grant", "1"),
    ("extension.bits_transaction.create", "1"),
    ("stream.offline", "1"),
    ("stream.online", "1"),
    ("user.authorization.grant", "1"),
    ("user.authorization.revoke", "1"),
    ("user.update", "1"),
    ("user.whisper.message", "1"),
];

/// Whether Twitch accepts this type and version.
pub fn is_known(sub_type: &str, version: &str) -> bool {
    KNOWN_TYPES
        .iter()
        .any(|&(t, v)| t == sub_type && v == version)
}

/// Scopes of which a user token needs at least one, or `None` when the type
/// needs no authorization from the user in the condition.
pub fn required_scopes(sub_type: &str) -> Option<&'static [&'static str]> {
    let prefix = |p: &str| sub_type.starts_with(p);
    let scopes: &'static [&'static str] = match sub_type {
        "stream.online" | "stream.offline" | "channel.update" | "channel.raid" | "user.update" => {
            return None
        }
        "channel.follow" => &["moderator:read:followers", "moderator:manage:followers"],
        "channel.cheer" | "channel.bits.use" => &["bits:read"],
        "channel.ad_break.begin" => &["channel:read:ads"],
        "channel.ban" | "channel.unban" => &["channel:moderate"],
        "channel.moderator.add" | "channel.moderator.remove" => &["moderation:read"],
        _ if prefix("channel.chat.") || sub_type == "channel.chat_settings.update" => {
            &["user:read:chat"]
        }
        "user.whisper.message" => &["user:read:whispers", "user:manage:whispers"],
        _ if prefix("channel.subscribe") || prefix("channel.subscription.") => {
            &["channel:read:subscriptions"]
        }
        _ if prefix("channel.channel_points_") => {
            &["channel:read:redemptions", "channel:manage:redemptions"]
        }
        _ if prefix("channel.hype_train.") => &["channel:read:hype_train"],
        _ if prefix("channel.poll.") => &["channel:read:polls", "channel:manage:polls"],
        _ if prefix("channel.prediction.") => {
            &["channel:read:predictions", "channel:manage:predictions"]
        }
        _ if prefix("channel.goal.") => &["channel:read:goals"],
        _ if prefix("channel.shield_mode.") => {
            &["moderator:read:shield_mode", "moderator:manage:shield_mode"]
        }
        _ if prefix("channel.shoutout.") => {
            &["moderator:read:shoutouts", "moderator:manage:shoutouts"]
        }
        _ if prefix("channel.vip.") => &["channel:read:vips", "channel:manage:vips"],
        _ if prefix("channel.charity_campaign.") => &["channel:read:charity"],
        _ => return None,
    };
    Some(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hype_train_v1_is_gone() {
        assert!(is_known("channel.hype_train.begin", "2"));
        assert!(!is_known("channel.hype_train.begin", "1"));
    }

    #[test]
    fn scopes_for_common_types() {
        assert_eq!(required_scopes("channel.cheer"), Some(&["bits:read"][..]));
        assert!(required_scopes("stream.online").is_none());
        assert!(required_scopes("channel.subscription.gift").is_some());
    }
}
