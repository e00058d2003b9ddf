//! Telegram channel: turns Telegram updates into agent calls. Built in the Telegram issue; the agent already holds every behaviour it will call.
