"""The paper's three architectures as LightningModules sharing one base, one MLP builder and one loss mix."""
