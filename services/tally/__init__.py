"""tally: counts ballots, builds the public record and signs results."""
