from .token_label_loss import TokenLabelCrossEntropy, smoothed_one_hot, soft_target_cross_entropy, token_label_targets

__all__ = ['TokenLabelCrossEntropy', 'smoothed_one_hot', 'soft_target_cross_entropy', 'token_label_targets']
