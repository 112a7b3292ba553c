"""Reports from the public: intake, the reporter's view, and reporter messages."""
