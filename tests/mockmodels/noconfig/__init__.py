"""A package folder with no config, licences or samples, holding models that fail."""
