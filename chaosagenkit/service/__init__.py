"""The chaos host: ChaosAgent, ``chaosagenkit serve``, its control API, and its activities."""
