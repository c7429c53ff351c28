"""Audio -> clips -> pooled vectors -> cached arrays -> splits -> LightningDataModule."""
