//! TAU's event type names: the EventSub type with every `.` replaced by `-`
//! (underscores stay), as the original TAU's clients expect.

/// Converts an EventSub type to TAU's name: every `.` becomes `-`.
pub fn tau_event_type(eventsub_type: &str) -> String {
    eventsub_type.replace('.', "-")
}

/// Converts a TAU event type name back to the EventSub type.
pub fn eventsub_type(tau_type: &str) -> String {
    tau_type.replace('-', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_tau() {
        assert_eq!(tau_event_type("channel.follow"), "channel-follow");
        assert_eq!(
            tau_event_type("channel.channel_points_custom_reward_redemption.add"),
            "channel-channel_points_custom_reward_redemption-add"
        );
        assert_eq!(
            eventsub_type("channel-hype_train-begin"),
            "channel.hype_train.begin"
        );
    }
}
