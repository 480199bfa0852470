"""Sidekiq's own Redis: the key layout and the writes that make a real Sidekiq run a job."""
