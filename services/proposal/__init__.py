"""proposal: consultations, proposals, polls and their rules, frozen when a poll opens."""
