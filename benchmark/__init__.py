"""CXR-Bench runner: suites -> runs -> result JSON -> leaderboard.md."""
