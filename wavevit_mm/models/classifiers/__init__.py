from .token_label_classifier import TokenLabelImageClassifier, mix_stem_tokens, rand_token_box, unmix_tokens

__all__ = ['TokenLabelImageClassifier', 'mix_stem_tokens', 'rand_token_box', 'unmix_tokens']
